//! Storage contract: `PresetRepo`, `ConversationRepo`, `SessionRepo`, `MailboxRepo`,
//! `IdempotencyRepo`, `ChatChainRepo` on SQLite and PostgreSQL. Cases see only the port traits.

use std::{collections::HashSet, sync::Arc};

use adapters::sql::{SqlSettings, SqlStorage, SqlTarget};
use chrono::Duration;
use ports::*;

use crate::support;

/// One migrated, isolated database: a temp SQLite file or a fresh PostgreSQL schema.
pub struct StorageFixture {
    storage: Arc<SqlStorage>,
    _dir: Option<tempfile::TempDir>,
    _schema: Option<support::PgSchema>,
}

impl StorageFixture {
    fn presets(&self) -> &dyn PresetRepo {
        &*self.storage
    }
    fn conversations(&self) -> &dyn ConversationRepo {
        &*self.storage
    }
    fn sessions(&self) -> &dyn SessionRepo {
        &*self.storage
    }
    fn mailbox(&self) -> &dyn MailboxRepo {
        &*self.storage
    }
    fn keys(&self) -> &dyn IdempotencyRepo {
        &*self.storage
    }
    fn chains(&self) -> &dyn ChatChainRepo {
        &*self.storage
    }
}

async fn sqlite() -> Option<StorageFixture> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("runtime.db");
    let target = SqlTarget::Sqlite {
        path: path.display().to_string(),
    };
    let storage = SqlStorage::connect(&target, &SqlSettings::default())
        .await
        .unwrap();
    assert!(
        storage.migrate().await.unwrap() > 0,
        "fresh database runs migrations"
    );
    assert_eq!(
        storage.migrate().await.unwrap(),
        0,
        "migrations are idempotent"
    );
    Some(StorageFixture {
        storage: Arc::new(storage),
        _dir: Some(dir),
        _schema: None,
    })
}

async fn postgres() -> Option<StorageFixture> {
    pg_fixture(support::PgSchema::create("storage").await?).await
}

/// The same suite against a PostgreSQL that accepts TLS only (`sslmode=verify-full` with
/// the test CA): every query of the contract goes over rustls.
async fn postgres_tls() -> Option<StorageFixture> {
    pg_fixture(support::PgSchema::create_tls("storage").await?).await
}

async fn pg_fixture(schema: support::PgSchema) -> Option<StorageFixture> {
    let target = SqlTarget::Postgres {
        url: schema.url.clone(),
    };
    let storage = SqlStorage::connect(&target, &SqlSettings::default())
        .await
        .unwrap();
    assert!(storage.migrate().await.unwrap() > 0);
    Some(StorageFixture {
        storage: Arc::new(storage),
        _dir: None,
        _schema: Some(schema),
    })
}

crate::contract!(storage, [sqlite => sqlite(), postgres => postgres(), postgres_tls => postgres_tls()], [
    preset_crud_round_trip,
    at_most_one_default,
    concurrent_defaults_leave_exactly_one,
    preset_in_use_blocks_delete,
    conversation_round_trip_and_patch,
    conversations_list_newest_first_with_paging,
    one_running_agent_session_per_conversation,
    concurrent_inserts_one_wins,
    finish_session_once,
    session_lists_and_lookups,
    orphans_become_failed,
    mailbox_drain_and_release,
    concurrent_drains_deliver_each_message_once,
    create_session_errors,
    health_answers,
    retry_keys_claim_settle_release_and_expire,
    concurrent_claims_of_a_key_one_wins,
    chat_chains_are_found_and_replaced,
    conversation_metadata_is_stored_replaced_and_filtered,
    deleting_a_conversation_removes_everything_of_it_at_once,
    archiving_archives_the_sessions_and_unarchiving_restores_them,
    notifications_are_ordered_read_after_an_id_and_bounded,
]);

fn id(prefix: &str) -> String {
    support::unique(prefix)
}

fn preset(preset_id: &str, is_default: bool) -> Preset {
    let now = now();
    Preset {
        preset_id: preset_id.into(),
        name: format!("Preset {preset_id}"),
        description: Some("for tests".into()),
        model: ModelSettings {
            name: "test:echo".into(),
            context_window: Some(32_000),
            temperature: Some(0.25),
            max_tokens: None,
            ..Default::default()
        },
        system_prompt: "You are {{ name }}.".into(),
        toolsets: vec![ToolsetSpec {
            toolset_name: "core".into(),
            enabled: true,
            exclude_tools: vec!["write".into()],
        }],
        environment: EnvironmentSpec {
            allowed_paths: vec!["/tmp".into()],
            ..EnvironmentSpec::default()
        },
        limits: RunLimits {
            max_total_tokens: Some(100_000),
            max_tool_calls: Some(40),
            ..RunLimits::default()
        },
        subagents: SubagentSpec {
            include_builtin: true,
            async_enabled: false,
            refs: vec![SubagentRef {
                preset_id: "helper".into(),
                name: "helper".into(),
                description: "helps".into(),
                instruction: None,
            }],
        },
        tool_config: ToolConfig {
            require_approval: vec!["shell".into()],
            show_activity: true,
        },
        mcp_servers: vec![McpServerSpec {
            name: "git".into(),
            transport: McpTransport::Http(HttpServer {
                url: "http://git.lan/mcp".into(),
                headers_from_env: [("Authorization".to_owned(), "GIT_AUTH".to_owned())].into(),
            }),
            tools: McpToolFilter {
                include: None,
                exclude: vec!["delete_repo".into()],
            },
            proxy: true,
            timeout_secs: Some(30),
        }],
        is_default,
        created_at: now,
        updated_at: now,
    }
}

fn conversation(conversation_id: &str) -> Conversation {
    let now = now();
    Conversation {
        conversation_id: conversation_id.into(),
        title: None,
        default_preset_id: None,
        status: ConversationStatus::Active,
        metadata: Metadata::new(),
        created_at: now,
        updated_at: now,
    }
}

fn status_filter(status: ConversationStatus) -> ConversationFilter {
    ConversationFilter {
        status: Some(status),
        ..ConversationFilter::default()
    }
}

fn session(session_id: &str, conversation_id: &str, kind: SessionType) -> SessionRecord {
    let now = now();
    SessionRecord {
        session_id: session_id.into(),
        parent_session_id: None,
        conversation_id: conversation_id.into(),
        kind: match kind {
            SessionType::Agent => SessionKind::Agent,
            SessionType::AsyncSubagent => SessionKind::AsyncSubagent {
                spawned_by: "spawner".into(),
                subagent_name: "helper".to_owned(),
            },
        },
        transport: Transport::Sse,
        preset_id: None,
        status: SessionStatus::Created,
        run_summary: None,
        pending_tool_calls: vec![],
        error: None,
        created_at: now,
        updated_at: now,
    }
}

fn outcome(status: SessionStatus) -> SessionOutcome {
    SessionOutcome {
        status,
        run_summary: Some(RunSummary {
            duration_ms: 1234,
            usage: Usage {
                total_tokens: 30,
                prompt_tokens: 20,
                completion_tokens: 10,
                model_requests: 2,
                ..Default::default()
            },
            ..Default::default()
        }),
        pending_tool_calls: vec![],
        error: None,
        finished_at: now(),
    }
}

/// Creates a root session and its conversation; returns the conversation id.
async fn root(f: &StorageFixture) -> String {
    let sid = id("s");
    f.sessions()
        .create_session(
            &session(&sid, &sid, SessionType::Agent),
            Some(conversation(&sid)),
        )
        .await
        .unwrap();
    sid
}

async fn preset_crud_round_trip(f: &StorageFixture) {
    let repo = f.presets();
    assert!(repo.presets_empty().await.unwrap());
    let p = preset(&id("p"), false);
    repo.create_preset(&p).await.unwrap();
    assert!(!repo.presets_empty().await.unwrap());
    assert_eq!(repo.get_preset(&as_preset(&p.preset_id)).await.unwrap(), p);
    assert!(matches!(
        repo.create_preset(&p).await,
        Err(StorageError::AlreadyExists)
    ));

    let mut changed = p.clone();
    changed.name = "renamed".into();
    changed.description = None;
    changed.model.temperature = None;
    changed.updated_at = p.updated_at + Duration::seconds(5);
    changed.created_at = p.created_at + Duration::days(1); // must be ignored
    repo.update_preset(&changed).await.unwrap();
    let stored = repo.get_preset(&as_preset(&p.preset_id)).await.unwrap();
    assert_eq!(stored.name, "renamed");
    assert_eq!(stored.description, None);
    assert_eq!(stored.model.temperature, None);
    assert_eq!(stored.created_at, p.created_at, "created_at is kept");
    assert_eq!(stored.updated_at, changed.updated_at);

    let other = preset(&format!("a{}", id("p")), false);
    repo.create_preset(&other).await.unwrap();
    let ids: Vec<_> = repo
        .list_presets()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.preset_id)
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "list is ordered by id");
    assert_eq!(ids.len(), 2);

    repo.delete_preset(&as_preset(&p.preset_id)).await.unwrap();
    assert!(matches!(
        repo.get_preset(&as_preset(&p.preset_id)).await,
        Err(StorageError::NotFound)
    ));
    assert!(matches!(
        repo.delete_preset(&as_preset(&p.preset_id)).await,
        Err(StorageError::NotFound)
    ));
    assert!(matches!(
        repo.update_preset(&p).await,
        Err(StorageError::NotFound)
    ));
}

async fn at_most_one_default(f: &StorageFixture) {
    let repo = f.presets();
    assert_eq!(repo.default_preset().await.unwrap(), None);
    let a = preset(&id("a"), true);
    let b = preset(&id("b"), true);
    repo.create_preset(&a).await.unwrap();
    assert_eq!(
        repo.default_preset().await.unwrap().unwrap().preset_id,
        a.preset_id
    );
    repo.create_preset(&b).await.unwrap();
    assert_eq!(
        repo.default_preset().await.unwrap().unwrap().preset_id,
        b.preset_id
    );
    assert!(
        !repo
            .get_preset(&as_preset(&a.preset_id))
            .await
            .unwrap()
            .is_default
    );

    repo.update_preset(&a).await.unwrap(); // a marked default again
    let defaults: Vec<_> = repo
        .list_presets()
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.is_default)
        .collect();
    assert_eq!(defaults.len(), 1);
    assert_eq!(defaults[0].preset_id, a.preset_id);
}

async fn concurrent_defaults_leave_exactly_one(f: &StorageFixture) {
    let ids: Vec<String> = (0..6).map(|i| id(&format!("d{i}"))).collect();
    let results = futures::future::join_all(
        ids.iter()
            .map(|pid| async move { f.presets().create_preset(&preset(pid, true)).await }),
    )
    .await;
    for r in &results {
        assert!(r.is_ok(), "every create succeeds: {r:?}");
    }
    let defaults = f
        .presets()
        .list_presets()
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.is_default)
        .count();
    assert_eq!(defaults, 1, "exactly one default survives");
}

async fn preset_in_use_blocks_delete(f: &StorageFixture) {
    let p = preset(&id("inuse"), false);
    f.presets().create_preset(&p).await.unwrap();

    // An active conversation using it as default blocks the delete; archiving releases it.
    let conv = root(f).await;
    f.sessions()
        .finish_session(&as_session(&conv), &outcome(SessionStatus::Committed))
        .await
        .unwrap();
    let patch = ConversationPatch {
        default_preset_id: Some(Some(p.preset_id.clone())),
        ..Default::default()
    };
    f.conversations()
        .update_conversation(&as_conversation(&conv), &patch, now())
        .await
        .unwrap();
    assert!(matches!(
        f.presets().delete_preset(&as_preset(&p.preset_id)).await,
        Err(StorageError::PresetInUse)
    ));
    let archive = ConversationPatch {
        status: Some(ConversationStatus::Archived),
        ..Default::default()
    };
    f.conversations()
        .update_conversation(&as_conversation(&conv), &archive, now())
        .await
        .unwrap();

    // A running session using it blocks the delete until it finishes.
    let sid = id("s");
    let mut running = session(&sid, &sid, SessionType::Agent);
    running.preset_id = Some(p.preset_id.clone());
    f.sessions()
        .create_session(&running, Some(conversation(&sid)))
        .await
        .unwrap();
    assert!(matches!(
        f.presets().delete_preset(&as_preset(&p.preset_id)).await,
        Err(StorageError::PresetInUse)
    ));
    f.sessions()
        .finish_session(&as_session(&sid), &outcome(SessionStatus::Committed))
        .await
        .unwrap();

    f.presets()
        .delete_preset(&as_preset(&p.preset_id))
        .await
        .unwrap();
    assert!(matches!(
        f.presets().get_preset(&as_preset(&p.preset_id)).await,
        Err(StorageError::NotFound)
    ));
}

async fn conversation_round_trip_and_patch(f: &StorageFixture) {
    let sid = id("s");
    let mut conv = conversation(&sid);
    conv.title = Some("first".into());
    conv.default_preset_id = Some("p1".into());
    f.sessions()
        .create_session(&session(&sid, &sid, SessionType::Agent), Some(conv.clone()))
        .await
        .unwrap();
    assert_eq!(
        f.conversations()
            .get_conversation(&as_conversation(&sid))
            .await
            .unwrap(),
        conv
    );

    let later = conv.updated_at + Duration::seconds(10);
    let patch = ConversationPatch {
        title: Some(Some("second".into())),
        ..Default::default()
    };
    let updated = f
        .conversations()
        .update_conversation(&as_conversation(&sid), &patch, later)
        .await
        .unwrap();
    assert_eq!(updated.title.as_deref(), Some("second"));
    assert_eq!(
        updated.default_preset_id.as_deref(),
        Some("p1"),
        "untouched field kept"
    );
    assert_eq!(updated.updated_at, later);
    assert_eq!(
        f.conversations()
            .get_conversation(&as_conversation(&sid))
            .await
            .unwrap(),
        updated
    );

    let clear = ConversationPatch {
        default_preset_id: Some(None),
        status: Some(ConversationStatus::Archived),
        ..Default::default()
    };
    f.sessions()
        .finish_session(
            &SessionId::from(sid.as_str()),
            &outcome(SessionStatus::Committed),
        )
        .await
        .unwrap();
    let cleared = f
        .conversations()
        .update_conversation(&as_conversation(&sid), &clear, later)
        .await
        .unwrap();
    assert_eq!(cleared.default_preset_id, None);
    assert_eq!(cleared.status, ConversationStatus::Archived);

    // touch never moves updated_at backwards
    f.conversations()
        .touch_conversation(&as_conversation(&sid), conv.created_at)
        .await
        .unwrap();
    assert_eq!(
        f.conversations()
            .get_conversation(&as_conversation(&sid))
            .await
            .unwrap()
            .updated_at,
        later
    );
    let latest = later + Duration::seconds(1);
    f.conversations()
        .touch_conversation(&as_conversation(&sid), latest)
        .await
        .unwrap();
    assert_eq!(
        f.conversations()
            .get_conversation(&as_conversation(&sid))
            .await
            .unwrap()
            .updated_at,
        latest
    );

    let missing = id("nope");
    assert!(matches!(
        f.conversations()
            .get_conversation(&as_conversation(&missing))
            .await,
        Err(StorageError::NotFound)
    ));
    assert!(matches!(
        f.conversations()
            .update_conversation(&as_conversation(&missing), &patch, later)
            .await,
        Err(StorageError::NotFound)
    ));
    assert!(matches!(
        f.conversations()
            .touch_conversation(&as_conversation(&missing), later)
            .await,
        Err(StorageError::NotFound)
    ));
}

async fn conversations_list_newest_first_with_paging(f: &StorageFixture) {
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(root(f).await);
    }
    // Give them distinct activity times in a known order: ids[i] active at base + i s.
    let base = now() + Duration::seconds(100);
    for (i, cid) in ids.iter().enumerate() {
        f.conversations()
            .touch_conversation(&as_conversation(cid), base + Duration::seconds(i as i64))
            .await
            .unwrap();
    }
    let archive = ConversationPatch {
        status: Some(ConversationStatus::Archived),
        ..Default::default()
    };
    // Only an idle conversation can be archived.
    f.sessions()
        .finish_session(
            &SessionId::from(ids[1].as_str()),
            &outcome(SessionStatus::Committed),
        )
        .await
        .unwrap();
    f.conversations()
        .update_conversation(&as_conversation(&ids[1]), &archive, base)
        .await
        .unwrap();

    let all = f
        .conversations()
        .list_conversations(&ConversationFilter::default(), Page::clamped(100, 0))
        .await
        .unwrap();
    let got: Vec<_> = all.iter().map(|c| c.conversation_id.to_string()).collect();
    let expected: Vec<_> = ids.iter().rev().cloned().collect();
    assert_eq!(got, expected, "newest activity first");

    let page = f
        .conversations()
        .list_conversations(&ConversationFilter::default(), Page::clamped(2, 1))
        .await
        .unwrap();
    let got: Vec<_> = page.iter().map(|c| c.conversation_id.to_string()).collect();
    assert_eq!(got, vec![ids[3].clone(), ids[2].clone()]);

    let active = f
        .conversations()
        .list_conversations(
            &status_filter(ConversationStatus::Active),
            Page::clamped(100, 0),
        )
        .await
        .unwrap();
    assert_eq!(active.len(), 4);
    assert!(active.iter().all(|c| c.conversation_id != ids[1].as_str()));
    let archived = f
        .conversations()
        .list_conversations(
            &status_filter(ConversationStatus::Archived),
            Page::clamped(100, 0),
        )
        .await
        .unwrap();
    assert_eq!(
        archived
            .iter()
            .map(|c| c.conversation_id.as_str())
            .collect::<Vec<_>>(),
        vec![ids[1].as_str()]
    );
}

async fn one_running_agent_session_per_conversation(f: &StorageFixture) {
    let conv = root(f).await;
    let second = session(&id("s"), &conv, SessionType::Agent);
    match f.sessions().create_session(&second, None).await {
        Err(StorageError::ConversationBusy { session_id }) => assert_eq!(session_id, conv.as_str()),
        other => panic!("expected busy, got {other:?}"),
    }
    // async subagents run beside the agent session
    let sub = session(&id("sub"), &conv, SessionType::AsyncSubagent);
    f.sessions().create_session(&sub, None).await.unwrap();
    let sub2 = session(&id("sub"), &conv, SessionType::AsyncSubagent);
    f.sessions().create_session(&sub2, None).await.unwrap();

    f.sessions()
        .finish_session(&as_session(&conv), &outcome(SessionStatus::Committed))
        .await
        .unwrap();
    f.sessions().create_session(&second, None).await.unwrap();
    let running = f
        .sessions()
        .running_agent_session(&as_conversation(&conv))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(running.session_id, second.session_id);
}

async fn concurrent_inserts_one_wins(f: &StorageFixture) {
    for _ in 0..5 {
        let conv = root(f).await;
        f.sessions()
            .finish_session(&as_session(&conv), &outcome(SessionStatus::Committed))
            .await
            .unwrap();
        let a = session(&id("a"), &conv, SessionType::Agent);
        let b = session(&id("b"), &conv, SessionType::Agent);
        let (ra, rb) = tokio::join!(
            f.sessions().create_session(&a, None),
            f.sessions().create_session(&b, None)
        );
        let (winner, loser) = match (&ra, &rb) {
            (Ok(()), Err(e)) => (&a, e),
            (Err(e), Ok(())) => (&b, e),
            other => panic!("exactly one insert must win: {other:?}"),
        };
        match loser {
            StorageError::ConversationBusy { session_id } => {
                assert_eq!(session_id, &winner.session_id)
            }
            other => panic!("loser must be told busy: {other:?}"),
        }
    }
}

async fn finish_session_once(f: &StorageFixture) {
    let conv = root(f).await;
    let before = f
        .conversations()
        .get_conversation(&as_conversation(&conv))
        .await
        .unwrap()
        .updated_at;
    let mut done = outcome(SessionStatus::AwaitingToolResults);
    done.finished_at = before + Duration::seconds(3);
    done.pending_tool_calls = vec![PendingToolCall {
        tool_call_id: "call_1".into(),
        tool_name: "shell".into(),
        args: serde_json::json!({"command": "ls"}),
        kind: PendingKind::Approval,
    }];
    f.sessions()
        .finish_session(&as_session(&conv), &done)
        .await
        .unwrap();

    let stored = f.sessions().get_session(&as_session(&conv)).await.unwrap();
    assert_eq!(stored.status, SessionStatus::AwaitingToolResults);
    assert_eq!(stored.run_summary, done.run_summary);
    assert_eq!(stored.pending_tool_calls, done.pending_tool_calls);
    assert_eq!(stored.updated_at, done.finished_at);
    assert_eq!(
        f.conversations()
            .get_conversation(&as_conversation(&conv))
            .await
            .unwrap()
            .updated_at,
        done.finished_at,
        "finishing touches the conversation"
    );

    assert!(matches!(
        f.sessions()
            .finish_session(&as_session(&conv), &outcome(SessionStatus::Failed))
            .await,
        Err(StorageError::Conflict(_))
    ));
    assert!(matches!(
        f.sessions()
            .finish_session(&as_session(&id("nope")), &outcome(SessionStatus::Failed))
            .await,
        Err(StorageError::NotFound)
    ));
    assert_eq!(
        f.sessions()
            .get_session(&as_session(&conv))
            .await
            .unwrap()
            .status,
        SessionStatus::AwaitingToolResults
    );

    let other = root(f).await;
    let mut failed = outcome(SessionStatus::Failed);
    failed.error = Some("state write failed".into());
    failed.run_summary = None;
    f.sessions()
        .finish_session(&as_session(&other), &failed)
        .await
        .unwrap();
    let stored = f.sessions().get_session(&as_session(&other)).await.unwrap();
    assert_eq!(stored.error.as_deref(), Some("state write failed"));
    assert_eq!(stored.run_summary, None);
}

async fn session_lists_and_lookups(f: &StorageFixture) {
    let conv = root(f).await;
    assert_eq!(
        f.sessions()
            .latest_continuable(&as_conversation(&conv))
            .await
            .unwrap(),
        None
    );
    f.sessions()
        .finish_session(&as_session(&conv), &outcome(SessionStatus::Committed))
        .await
        .unwrap();

    let mut chain = vec![as_session(&conv)];
    let mut t = now();
    for status in [SessionStatus::Committed, SessionStatus::Failed] {
        t += Duration::seconds(1);
        let mut s = session(&id("s"), &conv, SessionType::Agent);
        s.parent_session_id = chain.last().cloned();
        s.created_at = t;
        f.sessions().create_session(&s, None).await.unwrap();
        f.sessions()
            .finish_session(&as_session(&s.session_id), &outcome(status))
            .await
            .unwrap();
        chain.push(s.session_id);
    }
    t += Duration::seconds(1);
    let mut sub = session(&id("sub"), &conv, SessionType::AsyncSubagent);
    sub.created_at = t;
    sub.kind = SessionKind::AsyncSubagent {
        spawned_by: chain[1].clone(),
        subagent_name: "scout".to_owned(),
    };
    f.sessions().create_session(&sub, None).await.unwrap();
    f.sessions()
        .finish_session(
            &as_session(&sub.session_id),
            &outcome(SessionStatus::Committed),
        )
        .await
        .unwrap();

    let latest = f
        .sessions()
        .latest_continuable(&as_conversation(&conv))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        latest.session_id, chain[1],
        "newest committed agent session, not failed, not async"
    );
    assert_eq!(latest.parent_session_id.as_deref(), Some(conv.as_str()));
    let newest_agent = f
        .sessions()
        .latest_session(&as_conversation(&conv), SessionType::Agent)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        newest_agent.session_id, chain[2],
        "newest agent session whatever its status"
    );
    let newest_sub = f
        .sessions()
        .latest_session(&as_conversation(&conv), SessionType::AsyncSubagent)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(newest_sub.session_id, sub.session_id);
    assert_eq!(
        f.sessions()
            .latest_session(&as_conversation(&id("none")), SessionType::Agent)
            .await
            .unwrap(),
        None
    );

    let all = f
        .sessions()
        .list_sessions(&as_conversation(&conv), None, Page::clamped(100, 0))
        .await
        .unwrap();
    let ids: Vec<_> = all.iter().map(|s| s.session_id.clone()).collect();
    let mut expected = chain.clone();
    expected.push(sub.session_id.clone());
    assert_eq!(ids, expected, "oldest first");
    let agents = f
        .sessions()
        .list_sessions(
            &as_conversation(&conv),
            Some(SessionType::Agent),
            Page::clamped(2, 1),
        )
        .await
        .unwrap();
    assert_eq!(
        agents
            .iter()
            .map(|s| s.session_id.clone())
            .collect::<Vec<_>>(),
        chain[1..].to_vec()
    );
    let subs = f
        .sessions()
        .list_sessions(
            &as_conversation(&conv),
            Some(SessionType::AsyncSubagent),
            Page::clamped(10, 0),
        )
        .await
        .unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(
        subs[0].kind,
        SessionKind::AsyncSubagent {
            spawned_by: chain[1].clone(),
            subagent_name: "scout".to_owned(),
        },
        "an async subagent's spawner and name are stored on its session"
    );
    assert_eq!(
        f.sessions()
            .running_agent_session(&as_conversation(&conv))
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        f.sessions().get_session(&as_session(&id("nope"))).await,
        Err(StorageError::NotFound)
    ));
}

async fn orphans_become_failed(f: &StorageFixture) {
    let a = root(f).await;
    let b = root(f).await;
    let done = root(f).await;
    f.sessions()
        .finish_session(&as_session(&done), &outcome(SessionStatus::Committed))
        .await
        .unwrap();
    let mut failed = f
        .sessions()
        .fail_orphans("process restarted", now())
        .await
        .unwrap();
    failed.sort();
    let mut expected = vec![as_session(&a), as_session(&b)];
    expected.sort();
    assert_eq!(failed, expected);
    for sid in [&a, &b] {
        let s = f.sessions().get_session(&as_session(sid)).await.unwrap();
        assert_eq!(s.status, SessionStatus::Failed);
        assert_eq!(s.error.as_deref(), Some("process restarted"));
    }
    assert_eq!(
        f.sessions()
            .get_session(&as_session(&done))
            .await
            .unwrap()
            .status,
        SessionStatus::Committed
    );
    assert!(
        f.sessions()
            .fail_orphans("again", now())
            .await
            .unwrap()
            .is_empty()
    );
    // the conversation accepts a new run afterwards
    f.sessions()
        .create_session(&session(&id("s"), &a, SessionType::Agent), None)
        .await
        .unwrap();
}

fn message(conversation_id: &str, n: i64, source: MailboxSource) -> MailboxMessage {
    MailboxMessage {
        message_id: id("m"),
        conversation_id: conversation_id.into(),
        source_session_id: id("src").into(),
        source_type: source,
        subagent_name: format!("worker{n}"),
        created_at: now() + Duration::milliseconds(n),
        delivered_to: None,
    }
}

async fn mailbox_drain_and_release(f: &StorageFixture) {
    let conv = root(f).await;
    let other = root(f).await;
    let msgs: Vec<_> = (0..3)
        .map(|n| {
            message(
                &conv,
                n,
                if n == 1 {
                    MailboxSource::SubagentFailed
                } else {
                    MailboxSource::SubagentResult
                },
            )
        })
        .collect();
    for m in msgs.iter().rev() {
        f.mailbox().post_message(m).await.unwrap();
    }
    f.mailbox()
        .post_message(&message(&other, 9, MailboxSource::SubagentResult))
        .await
        .unwrap();
    assert!(matches!(
        f.mailbox().post_message(&msgs[0]).await,
        Err(StorageError::AlreadyExists)
    ));

    assert_eq!(
        f.mailbox()
            .list_messages(&as_conversation(&conv))
            .await
            .unwrap(),
        msgs,
        "oldest first"
    );
    assert_eq!(pending(f, &conv).await, 3);

    let taken = f
        .mailbox()
        .take_undelivered(&as_conversation(&conv), &as_session("next"))
        .await
        .unwrap();
    let expected: Vec<_> = msgs
        .iter()
        .cloned()
        .map(|mut m| {
            m.delivered_to = Some("next".into());
            m
        })
        .collect();
    assert_eq!(taken, expected);
    assert_eq!(pending(f, &conv).await, 0);
    assert!(
        f.mailbox()
            .take_undelivered(&as_conversation(&conv), &as_session("again"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(pending(f, &other).await, 1, "other conversations untouched");

    assert_eq!(
        f.mailbox()
            .release_delivered(&as_session("next"))
            .await
            .unwrap(),
        3
    );
    assert_eq!(pending(f, &conv).await, 3);
    assert_eq!(
        f.mailbox()
            .list_messages(&as_conversation(&conv))
            .await
            .unwrap(),
        msgs
    );
}

async fn concurrent_drains_deliver_each_message_once(f: &StorageFixture) {
    let conv = root(f).await;
    let mut posted = HashSet::new();
    for n in 0..20 {
        let m = message(&conv, n, MailboxSource::SubagentResult);
        posted.insert(m.message_id.clone());
        f.mailbox().post_message(&m).await.unwrap();
    }
    let conv_ref = &conv;
    let drains = futures::future::join_all((0..8).map(|i| async move {
        f.mailbox()
            .take_undelivered(&as_conversation(conv_ref), &as_session(&format!("fire{i}")))
            .await
    }))
    .await;
    let mut seen = HashSet::new();
    for (i, drain) in drains.into_iter().enumerate() {
        for m in drain.unwrap() {
            assert_eq!(m.delivered_to, Some(as_session(&format!("fire{i}"))));
            assert!(seen.insert(m.message_id), "a message was delivered twice");
        }
    }
    assert_eq!(seen, posted, "every message delivered exactly once");
    for m in f
        .mailbox()
        .list_messages(&as_conversation(&conv))
        .await
        .unwrap()
    {
        assert!(m.delivered_to.is_some());
    }
}

async fn create_session_errors(f: &StorageFixture) {
    let missing = session(&id("s"), &id("noconv"), SessionType::Agent);
    assert!(matches!(
        f.sessions().create_session(&missing, None).await,
        Err(StorageError::NotFound)
    ));
    let conv = root(f).await;
    // same id again (as a new root) is refused and leaves no trace
    let dup = session(&conv, &conv, SessionType::Agent);
    assert!(matches!(
        f.sessions()
            .create_session(&dup, Some(conversation(&conv)))
            .await,
        Err(StorageError::AlreadyExists)
    ));
    let sub = session(&conv, &conv, SessionType::AsyncSubagent);
    assert!(matches!(
        f.sessions().create_session(&sub, None).await,
        Err(StorageError::AlreadyExists)
    ));
    // a root whose session insert fails must not leave its conversation behind
    let fresh = id("c");
    let clash = session(&conv, &fresh, SessionType::Agent);
    assert!(
        f.sessions()
            .create_session(&clash, Some(conversation(&fresh)))
            .await
            .is_err()
    );
    assert!(matches!(
        f.conversations()
            .get_conversation(&as_conversation(&fresh))
            .await,
        Err(StorageError::NotFound)
    ));
}

async fn health_answers(f: &StorageFixture) {
    let database: &dyn Database = &*f.storage;
    database.health().await.unwrap();
}

fn as_session(id: &str) -> SessionId {
    SessionId::from(id)
}

fn as_conversation(id: &str) -> ConversationId {
    ConversationId::from(id)
}

fn as_preset(id: &str) -> PresetId {
    PresetId::from(id)
}

/// How many messages of `conversation` wait undelivered.
async fn pending(f: &StorageFixture, conversation: &str) -> u64 {
    f.mailbox()
        .pending_count(&as_conversation(conversation))
        .await
        .unwrap()
}

async fn retry_keys_claim_settle_release_and_expire(f: &StorageFixture) {
    let now = chrono::Utc::now();
    let long_ago = now - Duration::hours(48);
    let claim = |key: &'static str, fp: &'static str, at| async move {
        f.keys()
            .claim(key, fp, at, at - Duration::hours(24))
            .await
            .unwrap()
    };
    assert_eq!(claim("k1", "fp-a", now).await, Claim::Claimed);
    let Claim::Taken(pending) = claim("k1", "fp-b", now).await else {
        panic!("a claimed key is taken")
    };
    assert_eq!(
        (pending.fingerprint.as_str(), pending.run.clone()),
        ("fp-a", None)
    );

    let (session, conversation) = (as_session("s1"), as_conversation("c1"));
    f.keys()
        .settle("k1", &session, &conversation)
        .await
        .unwrap();
    let settled = f.keys().get_claim("k1").await.unwrap().unwrap();
    assert_eq!(settled.run, Some((session, conversation)));
    assert_eq!(settled.created_at.timestamp(), now.timestamp());

    // A released claim frees the key.
    assert_eq!(claim("k2", "fp", now).await, Claim::Claimed);
    f.keys().release("k2").await.unwrap();
    assert_eq!(f.keys().get_claim("k2").await.unwrap(), None);
    assert_eq!(claim("k2", "fp", now).await, Claim::Claimed);

    // A claim older than the expiry is forgotten by the next claim.
    assert_eq!(claim("old", "fp-old", long_ago).await, Claim::Claimed);
    assert_eq!(claim("old", "fp-new", now).await, Claim::Claimed);
    let renewed = f.keys().get_claim("old").await.unwrap().unwrap();
    assert_eq!(renewed.fingerprint, "fp-new");
}

async fn concurrent_claims_of_a_key_one_wins(f: &StorageFixture) {
    let now = chrono::Utc::now();
    let claims = futures::future::join_all((0..8).map(|i| async move {
        f.keys()
            .claim("race", &format!("fp{i}"), now, now - Duration::hours(24))
            .await
    }))
    .await;
    let won = claims
        .iter()
        .filter(|c| matches!(c, Ok(Claim::Claimed)))
        .count();
    assert_eq!(won, 1, "{claims:?}");
    assert!(claims.iter().all(Result::is_ok), "{claims:?}");
}

async fn notifications_are_ordered_read_after_an_id_and_bounded(f: &StorageFixture) {
    let repo: &dyn NotificationRepo = &*f.storage;
    let note = |n: u32| NewNotification {
        kind: NotificationKind::SessionFinished,
        at: now(),
        conversation_id: format!("c{n}").into(),
        session_id: Some(format!("s{n}").into()),
        session_type: Some(SessionType::Agent),
        status: Some(SessionStatus::Committed),
        subagent: None,
    };
    // Two alone, then three in one batch.
    let mut ids = Vec::new();
    for n in 0..2 {
        ids.extend(repo.append_notifications(&[note(n)], 3).await.unwrap());
    }
    let batch: Vec<NewNotification> = (2..5).map(note).collect();
    ids.extend(repo.append_notifications(&batch, 3).await.unwrap());
    assert_eq!(ids.len(), 5);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    // Only the newest three are kept.
    let kept = repo.notifications_after(0, 100).await.unwrap();
    assert_eq!(
        kept.iter().map(|n| n.id).collect::<Vec<_>>(),
        ids[2..].to_vec()
    );
    let first = &kept[0].body;
    assert_eq!(first.session_id.as_ref().unwrap().as_str(), "s2");
    assert_eq!(first.conversation_id.as_str(), "c2");
    assert_eq!(first.status, Some(SessionStatus::Committed));
    let after = repo.notifications_after(ids[3], 100).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].id, ids[4]);
    assert_eq!(after[0].body.session_id.as_ref().unwrap().as_str(), "s4");
    assert_eq!(repo.notifications_after(ids[1], 1).await.unwrap().len(), 1);
    // An id is never reused, even after the newest was pruned by later appends.
    let next = repo.append_notifications(&[note(9)], 3).await.unwrap();
    assert!(next[0] > ids[4]);
    assert!(repo.append_notifications(&[], 3).await.unwrap().is_empty());
    // A batch larger than one statement's rows keeps its order across statements.
    let large: Vec<NewNotification> = (100..1_300).map(note).collect();
    let large_ids = repo.append_notifications(&large, 3).await.unwrap();
    assert_eq!(large_ids.len(), 1_200);
    assert!(large_ids.windows(2).all(|w| w[0] < w[1]));
    assert!(large_ids[0] > next[0]);
    let kept = repo.notifications_after(0, 100).await.unwrap();
    let kept_sessions: Vec<&str> = kept
        .iter()
        .map(|n| n.body.session_id.as_ref().unwrap().as_str())
        .collect();
    assert_eq!(kept_sessions, ["s1297", "s1298", "s1299"]);
    assert_eq!(kept[2].id, large_ids[1_199]);
}

async fn chat_chains_are_found_and_replaced(f: &StorageFixture) {
    let chains = f.chains();
    assert_eq!(chains.find_chain("h1").await.unwrap(), None);
    let (s1, c1) = (SessionId::from("s1"), ConversationId::from("c1"));
    chains.remember_chain("h1", &s1, &c1).await.unwrap();
    assert_eq!(
        chains.find_chain("h1").await.unwrap(),
        Some((s1.clone(), c1.clone()))
    );
    assert_eq!(chains.find_chain("h2").await.unwrap(), None);
    let (s2, c2) = (SessionId::from("s2"), ConversationId::from("c2"));
    chains.remember_chain("h1", &s2, &c2).await.unwrap();
    assert_eq!(chains.find_chain("h1").await.unwrap(), Some((s2, c2)));
}

async fn conversation_metadata_is_stored_replaced_and_filtered(f: &StorageFixture) {
    let tagged = |pairs: &[(&str, &str)]| -> Metadata {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let mut ids = Vec::new();
    for channel in ["c1", "c2", "c1"] {
        let sid = id("s");
        let mut conv = conversation(&sid);
        conv.metadata = tagged(&[("channel", channel), ("team", "ops")]);
        f.sessions()
            .create_session(&session(&sid, &sid, SessionType::Agent), Some(conv))
            .await
            .unwrap();
        ids.push(sid);
    }
    let untagged = root(f).await;
    let got = f
        .conversations()
        .get_conversation(&as_conversation(&ids[0]))
        .await
        .unwrap();
    assert_eq!(got.metadata, tagged(&[("channel", "c1"), ("team", "ops")]));
    let find = |pairs: &[(&str, &str)]| ConversationFilter {
        metadata: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..ConversationFilter::default()
    };
    let listed = |found: Vec<Conversation>| {
        let mut ids: Vec<String> = found
            .iter()
            .map(|c| c.conversation_id.to_string())
            .collect();
        ids.sort();
        ids
    };
    let page = Page::clamped(100, 0);
    let mut c1 = vec![ids[0].clone(), ids[2].clone()];
    c1.sort();
    let found = f
        .conversations()
        .list_conversations(&find(&[("channel", "c1")]), page)
        .await
        .unwrap();
    assert!(
        found.iter().all(|c| c.metadata["team"] == "ops"),
        "listed with their metadata"
    );
    assert_eq!(listed(found), c1);
    let both = f
        .conversations()
        .list_conversations(&find(&[("channel", "c2"), ("team", "ops")]), page)
        .await
        .unwrap();
    assert_eq!(listed(both), [ids[1].clone()]);
    let none = f
        .conversations()
        .list_conversations(&find(&[("channel", "c2"), ("team", "dev")]), page)
        .await
        .unwrap();
    assert!(none.is_empty());

    // An update replaces the whole map; `{}` clears it.
    let replace = |m: Metadata| ConversationPatch {
        metadata: Some(m),
        ..ConversationPatch::default()
    };
    let updated = f
        .conversations()
        .update_conversation(
            &as_conversation(&ids[0]),
            &replace(tagged(&[("channel", "c9")])),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(updated.metadata, tagged(&[("channel", "c9")]));
    let still_c1 = f
        .conversations()
        .list_conversations(&find(&[("channel", "c1")]), page)
        .await
        .unwrap();
    assert_eq!(listed(still_c1), [ids[2].clone()]);
    let cleared = f
        .conversations()
        .update_conversation(
            &as_conversation(&untagged),
            &replace(Metadata::new()),
            now(),
        )
        .await
        .unwrap();
    assert!(cleared.metadata.is_empty());
}

async fn deleting_a_conversation_removes_everything_of_it_at_once(f: &StorageFixture) {
    let doomed = root(f).await;
    let kept = root(f).await;
    let conversation = as_conversation(&doomed);
    // Refused while its session runs, and nothing is removed.
    let busy = f.conversations().delete_conversation(&conversation).await;
    assert!(
        matches!(&busy, Err(StorageError::ConversationBusy { session_id }) if session_id.as_str() == doomed),
        "{busy:?}"
    );
    f.sessions()
        .finish_session(
            &SessionId::from(doomed.as_str()),
            &outcome(SessionStatus::Committed),
        )
        .await
        .unwrap();
    let second = id("s");
    let mut next = session(&second, &doomed, SessionType::Agent);
    next.parent_session_id = Some(doomed.as_str().into());
    f.sessions().create_session(&next, None).await.unwrap();
    f.sessions()
        .finish_session(
            &SessionId::from(second.as_str()),
            &outcome(SessionStatus::Committed),
        )
        .await
        .unwrap();
    f.mailbox()
        .post_message(&message(&doomed, 1, MailboxSource::SubagentResult))
        .await
        .unwrap();
    f.chains()
        .remember_chain(
            "chain-of-doomed",
            &SessionId::from(second.as_str()),
            &conversation,
        )
        .await
        .unwrap();
    let patch = ConversationPatch {
        metadata: Some([("channel".to_owned(), "c".to_owned())].into()),
        ..ConversationPatch::default()
    };
    f.conversations()
        .update_conversation(&conversation, &patch, now())
        .await
        .unwrap();

    let mut removed: Vec<String> = f
        .conversations()
        .delete_conversation(&conversation)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.session_id.to_string())
        .collect();
    removed.sort();
    let mut expected = vec![doomed.clone(), second.clone()];
    expected.sort();
    assert_eq!(removed, expected);
    assert!(matches!(
        f.conversations().get_conversation(&conversation).await,
        Err(StorageError::NotFound)
    ));
    assert!(matches!(
        f.sessions()
            .get_session(&SessionId::from(second.as_str()))
            .await,
        Err(StorageError::NotFound)
    ));
    assert_eq!(f.mailbox().pending_count(&conversation).await.unwrap(), 0);
    assert_eq!(
        f.chains().find_chain("chain-of-doomed").await.unwrap(),
        None
    );
    let tagged = ConversationFilter {
        metadata: vec![("channel".to_owned(), "c".to_owned())],
        ..ConversationFilter::default()
    };
    assert!(
        f.conversations()
            .list_conversations(&tagged, Page::clamped(10, 0))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        f.conversations().delete_conversation(&conversation).await,
        Err(StorageError::NotFound)
    ));
    // The other conversation is untouched.
    f.conversations()
        .get_conversation(&as_conversation(&kept))
        .await
        .unwrap();
}

async fn archiving_archives_the_sessions_and_unarchiving_restores_them(f: &StorageFixture) {
    let archived = root(f).await;
    let kept = root(f).await;
    let conversation = as_conversation(&archived);
    let status = |status| ConversationPatch {
        status: Some(status),
        ..ConversationPatch::default()
    };
    // Refused while its session runs, and nothing changes.
    let busy = f
        .conversations()
        .update_conversation(&conversation, &status(ConversationStatus::Archived), now())
        .await;
    assert!(
        matches!(&busy, Err(StorageError::ConversationBusy { session_id }) if session_id.as_str() == archived),
        "{busy:?}"
    );
    let still = f.conversations().get_conversation(&conversation).await;
    assert_eq!(still.unwrap().status, ConversationStatus::Active);
    f.sessions()
        .finish_session(
            &SessionId::from(archived.as_str()),
            &outcome(SessionStatus::Committed),
        )
        .await
        .unwrap();
    let failed = id("s");
    let mut second = session(&failed, &archived, SessionType::Agent);
    second.parent_session_id = Some(archived.as_str().into());
    f.sessions().create_session(&second, None).await.unwrap();
    f.sessions()
        .finish_session(
            &SessionId::from(failed.as_str()),
            &outcome(SessionStatus::Failed),
        )
        .await
        .unwrap();
    let statuses = || async {
        f.sessions()
            .list_sessions(&conversation, None, Page::clamped(10, 0))
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.status)
            .collect::<Vec<_>>()
    };
    let updated = f
        .conversations()
        .update_conversation(&conversation, &status(ConversationStatus::Archived), now())
        .await
        .unwrap();
    assert_eq!(updated.status, ConversationStatus::Archived);
    assert_eq!(statuses().await, [SessionStatus::Archived; 2]);
    assert_eq!(
        f.sessions()
            .latest_continuable(&conversation)
            .await
            .unwrap(),
        None
    );
    // It takes no session; other edits still work, and archiving again changes nothing.
    let mut next = session(&id("s"), &archived, SessionType::Agent);
    next.parent_session_id = Some(archived.as_str().into());
    assert!(matches!(
        f.sessions().create_session(&next, None).await,
        Err(StorageError::ConversationArchived)
    ));
    let titled = ConversationPatch {
        title: Some(Some("kept for the record".into())),
        ..ConversationPatch::default()
    };
    let titled = f
        .conversations()
        .update_conversation(&conversation, &titled, now())
        .await
        .unwrap();
    assert_eq!(titled.status, ConversationStatus::Archived);
    f.conversations()
        .update_conversation(&conversation, &status(ConversationStatus::Archived), now())
        .await
        .unwrap();
    assert_eq!(statuses().await, [SessionStatus::Archived; 2]);
    // Retention finds it once its last touch is older than the cutoff, never `kept`.
    let later = now() + Duration::seconds(5);
    let due = f
        .conversations()
        .archived_before(later, 1000)
        .await
        .unwrap();
    assert!(due.contains(&conversation), "{due:?}");
    assert!(!due.contains(&as_conversation(&kept)), "{due:?}");
    let earlier = now() - Duration::days(1);
    let due = f
        .conversations()
        .archived_before(earlier, 1000)
        .await
        .unwrap();
    assert!(!due.contains(&conversation), "{due:?}");

    // Unarchived, each session has its status back and the conversation runs again.
    f.conversations()
        .update_conversation(&conversation, &status(ConversationStatus::Active), now())
        .await
        .unwrap();
    assert_eq!(
        statuses().await,
        [SessionStatus::Committed, SessionStatus::Failed]
    );
    let latest = f
        .sessions()
        .latest_continuable(&conversation)
        .await
        .unwrap();
    assert_eq!(latest.unwrap().session_id.as_str(), archived);
    f.sessions().create_session(&next, None).await.unwrap();
}

/// TLS is checked, not just spoken: `verify-full` without the test CA does not trust the
/// server, `require` encrypts without checking (libpq's meaning), and the server takes no
/// plain TCP, so the suite above passing means every query went over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_tls_modes() {
    let Ok(url) = std::env::var("TEST_PG_TLS_URL") else {
        let _: Option<()> = support::skip_or_fail(
            "storage::postgres_tls",
            "TEST_PG_TLS_URL is not set (tests/tls/start.sh starts the server)",
        );
        return;
    };
    let ping = |url: String| async move {
        let target = SqlTarget::Postgres { url };
        let settings = SqlSettings {
            connection_timeout: std::time::Duration::from_secs(2),
            busy_timeout: std::time::Duration::from_secs(2),
            ..SqlSettings::default()
        };
        SqlStorage::connect(&target, &settings).await?.ping().await
    };
    let untrusted = ping(url.clone()).await.unwrap_err().to_string();
    assert!(
        untrusted.to_lowercase().contains("certificate"),
        "verify-full without the CA: {untrusted}"
    );
    let require = url.replace("sslmode=verify-full", "sslmode=require");
    ping(require).await.unwrap();
    let plain = url.replace("sslmode=verify-full", "sslmode=disable");
    assert!(ping(plain).await.is_err(), "the server refuses plain TCP");
}
