from pinstack_common.db.migrations import run_env
from pinstack_post.models import metadata

run_env(metadata)
