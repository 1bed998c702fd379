"""tsunagu chat service: WebSocket gateway, HTTP API, threads, storage, fan-out."""
