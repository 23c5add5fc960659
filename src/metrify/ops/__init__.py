"""Operations: logging, metrics, tracing, health."""
