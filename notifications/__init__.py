"""tsunagu notifications: events, scheduling and delivery channels (docs/notifications.md)."""

from .setup import NOTIFICATIONS, RUN_LOOPS, Notifications, setup

__all__ = ["NOTIFICATIONS", "RUN_LOOPS", "Notifications", "setup"]
