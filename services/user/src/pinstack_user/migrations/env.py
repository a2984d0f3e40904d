from pinstack_common.db.migrations import run_env
from pinstack_user.models import metadata

run_env(metadata)
