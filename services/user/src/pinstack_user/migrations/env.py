from pinstack_common.migrations import run_env
from pinstack_user.models import metadata

run_env(metadata)
