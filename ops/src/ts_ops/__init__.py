"""Operations tooling: the local stack (`uv run stack`), env validation (`uv run validate-env`)
and token generation (`uv run gen-token`)."""
