"""HTTP routes, one module per domain: parse, call one RPC, map the result."""
