"""The chat package's exception tree. Each error carries its wire codes.

    ChatError                  code, HTTP status, WebSocket close code (None: error frame)
    ├── BadRequest             bad_frame / bad_request          400
    ├── Unauthorized           unauthorized                     401, close 4001
    ├── Forbidden              forbidden                        403
    ├── NotFound               not_found                        404
    ├── Conflict               conflict                         409
    ├── TooLarge               too_large                        413, close 1009
    ├── RateLimited            rate_limited (+ retry_after)     429
    └── Unavailable            unavailable                      503

Storage back ends translate asyncpg and sqlite3 errors into these where they catch them;
nothing above storage sees a driver exception.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ChatError(Exception):
    code: ClassVar[str] = "internal"
    status: ClassVar[int] = 500

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.extra}


class BadRequest(ChatError):
    code = "bad_request"
    status = 400


class BadFrame(BadRequest):
    code = "bad_frame"


class Unauthorized(ChatError):
    code = "unauthorized"
    status = 401


class Forbidden(ChatError):
    code = "forbidden"
    status = 403


class NotFound(ChatError):
    code = "not_found"
    status = 404


class Conflict(ChatError):
    code = "conflict"
    status = 409


class TooLarge(ChatError):
    code = "too_large"
    status = 413


class RateLimited(ChatError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, retry_after=round(retry_after, 3))
        self.retry_after = retry_after


class Unavailable(ChatError):
    code = "unavailable"
    status = 503


# WebSocket close codes used by the gateway (RFC 6455 and the 4000-4999 private range).
CLOSE_GOING_AWAY = 1001
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TOO_BIG = 1009
CLOSE_UNAUTHORIZED = 4001
CLOSE_SLOW_CONSUMER = 4008
CLOSE_TOO_MANY_CONNECTIONS = 4029
