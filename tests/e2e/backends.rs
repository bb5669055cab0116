//! Production backends: PostgreSQL, Redis and S3, and how health reports their outages.

use adapters::testing::{PgSchema, skip_or_fail};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{ChaosProxy, TestApp, preset_body, target_of, via};

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn redis_reachable() -> Option<()> {
    let url = redis_url();
    let hostport = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    match tokio::net::TcpStream::connect(&hostport).await {
        Ok(_) => Some(()),
        Err(e) => skip_or_fail("e2e redis", &format!("{url}: {e}")),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_and_redis_report_connected_and_serve_presets() {
    let Some(schema) = PgSchema::create("e2e").await else {
        return;
    };
    let Some(()) = redis_reachable().await else {
        return;
    };
    let redis = redis_url();
    let app = TestApp::with_vars(&[("DATABASE_URL", &schema.url), ("REDIS_URL", &redis)]).await;
    let (status, health) = app.health().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        health,
        json!({"status": "ok", "database": "connected", "event_bus": "connected", "state_store": "connected", "sandbox": crate::support::sandbox_status(), "draining": false})
    );
    assert_eq!(
        app.get("/api/presets/default/get").await.0,
        StatusCode::OK,
        "seeded on PostgreSQL too"
    );
    assert_eq!(
        app.post("/api/presets/create", preset_body("pg")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/presets/pg/get").await.1["model"]["name"],
        "test:echo"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_outage_is_503_and_the_pool_recovers() {
    let Some(schema) = PgSchema::create("outage").await else {
        return;
    };
    let proxy = ChaosProxy::start(target_of(&schema.url)).await;
    let url = via(&schema.url, proxy.addr);
    let app = TestApp::with_vars(&[("DATABASE_URL", &url)]).await;
    assert_eq!(app.get("/api/presets/list").await.0, StatusCode::OK);

    proxy.cut();
    let (status, health) = app.health().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health["database"], "error");
    assert_eq!(health["status"], "unavailable");
    let (status, body) = app.get("/api/presets/list").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "unavailable");

    proxy.restore();
    let mut recovered = false;
    for _ in 0..150 {
        if app.get("/api/presets/list").await.0 == StatusCode::OK {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(recovered, "the pool reconnects without a restart");
    assert_eq!(app.health().await.1["database"], "connected");
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_down_degrades_health_but_the_service_starts() {
    // Port 9 (discard) is closed on loopback: the bus connects lazily, so start-up succeeds.
    let app = TestApp::with_vars(&[("REDIS_URL", "redis://127.0.0.1:9")]).await;
    let (status, health) = app.health().await;
    assert_eq!(status, StatusCode::OK, "only the database makes health 503");
    assert_eq!(
        health,
        json!({"status": "degraded", "database": "connected", "event_bus": "error", "state_store": "connected", "sandbox": crate::support::sandbox_status(), "draining": false})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_state_store_reports_connected() {
    let Ok(endpoint) = std::env::var("TEST_S3_ENDPOINT") else {
        skip_or_fail::<()>("e2e s3", "TEST_S3_ENDPOINT is not set");
        return;
    };
    let bucket = adapters::testing::unique("e2e").replace('_', "-");
    let created = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await;
    if let Err(e) = created {
        skip_or_fail::<()>("e2e s3", &e.to_string());
        return;
    }
    let app = TestApp::with_vars(&[
        ("STATE_STORE", "s3"),
        ("S3_ENDPOINT", &endpoint),
        ("S3_BUCKET", &bucket),
        ("S3_ACCESS_KEY", "test"),
        ("S3_SECRET_KEY", "test"),
        ("S3_REGION", "us-east-1"),
    ])
    .await;
    let (_, health) = app.health().await;
    assert_eq!(health["state_store"], "connected");

    let missing = TestApp::with_vars(&[
        ("STATE_STORE", "s3"),
        ("S3_ENDPOINT", &endpoint),
        ("S3_BUCKET", "no-such-bucket-here"),
        ("S3_ACCESS_KEY", "test"),
        ("S3_SECRET_KEY", "test"),
    ])
    .await;
    let (status, health) = missing.health().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["state_store"], "error");
}

/// The service on PostgreSQL and Redis that speak TLS only (`sslmode=verify-full`,
/// `rediss://` with `REDIS_CA_FILE`): health reports both connected, and a run started
/// with 202 is committed and its events read back from the Redis stream.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_and_redis_over_tls_serve_a_run() {
    let Some(app) = crate::support::MockApp::start(crate::support::Backend::PgRedisTls, &[]).await
    else {
        return;
    };
    let (status, health) = app.health().await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["database"], "connected", "{health}");
    assert_eq!(health["event_bus"], "connected", "{health}");
    app.mock.push(mock_llm::Script::text("over TLS", 2));
    let (status, accepted) = app.post("/api/conversations/run", app.new_run("hi")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let session = accepted["session_id"].as_str().unwrap();
    let events = app
        .attach(&format!("/api/sessions/{session}/events"), None)
        .await
        .all()
        .await;
    assert_eq!(crate::support::text_of(&events), "over TLS");
    assert_eq!(app.wait_finished(session).await, "committed");
}
