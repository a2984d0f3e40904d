from pinstack_auth.models import metadata
from pinstack_common.db.migrations import run_env

run_env(metadata)
