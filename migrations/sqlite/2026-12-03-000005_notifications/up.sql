-- The notification log (GET /api/notifications, webhooks): bounded, ids never reused.
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    body TEXT NOT NULL
);
