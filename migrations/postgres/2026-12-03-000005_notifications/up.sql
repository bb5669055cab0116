-- The notification log (GET /api/notifications, webhooks): bounded, ids never reused.
CREATE TABLE notifications (
    id BIGSERIAL PRIMARY KEY,
    body TEXT NOT NULL
);
