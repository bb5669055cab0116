//! One diesel schema for both backends: only types PostgreSQL and SQLite share
//! (TEXT for ids and JSON, BIGINT epoch microseconds for time, BOOLEAN).

diesel::table! {
    presets (preset_id) {
        preset_id -> Text,
        name -> Text,
        description -> Nullable<Text>,
        model -> Text,
        system_prompt -> Text,
        toolsets -> Text,
        environment -> Text,
        subagents -> Text,
        tool_config -> Text,
        mcp_servers -> Text,
        limits -> Text,
        is_default -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    conversations (conversation_id) {
        conversation_id -> Text,
        title -> Nullable<Text>,
        default_preset_id -> Nullable<Text>,
        status -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    sessions (session_id) {
        session_id -> Text,
        parent_session_id -> Nullable<Text>,
        conversation_id -> Text,
        session_type -> Text,
        transport -> Text,
        spawned_by -> Nullable<Text>,
        preset_id -> Nullable<Text>,
        status -> Text,
        run_summary -> Nullable<Text>,
        pending_tool_calls -> Text,
        error -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        subagent_name -> Nullable<Text>,
        status_before_archive -> Nullable<Text>,
    }
}

diesel::table! {
    mailbox (message_id) {
        message_id -> Text,
        conversation_id -> Text,
        source_session_id -> Text,
        source_type -> Text,
        subagent_name -> Text,
        created_at -> BigInt,
        delivered_to -> Nullable<Text>,
    }
}

diesel::table! {
    conversation_metadata (conversation_id, key) {
        conversation_id -> Text,
        key -> Text,
        value -> Text,
    }
}

diesel::joinable!(sessions -> conversations (conversation_id));
diesel::joinable!(conversation_metadata -> conversations (conversation_id));
diesel::table! {
    idempotency_keys (key) {
        key -> Text,
        fingerprint -> Text,
        session_id -> Nullable<Text>,
        conversation_id -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::joinable!(mailbox -> conversations (conversation_id));
diesel::allow_tables_to_appear_in_same_query!(
    presets,
    conversations,
    sessions,
    mailbox,
    conversation_metadata
);

diesel::table! {
    notifications (id) {
        id -> BigInt,
        body -> Text,
    }
}

diesel::table! {
    chat_chains (chain_hash) {
        chain_hash -> Text,
        session_id -> Text,
        conversation_id -> Text,
    }
}
