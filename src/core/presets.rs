//! Preset administration: validation, the single-default rule, and the seeded default.

use std::sync::Arc;

use ports::PresetId;
use ports::{
    EnvironmentFactory, ModelSettings, Preset, PresetPatch, PresetRepo, StorageError, ToolServers,
    ToolsetSpec, now,
};

use super::preset_validation::lengths as preset_lengths;
use super::preset_validation::{FieldError, validate};

/// What can go wrong administering presets.
#[derive(Debug, thiserror::Error)]
pub enum PresetError {
    #[error("preset not found")]
    NotFound,
    #[error("a preset with this id already exists")]
    AlreadyExists,
    #[error("preset is in use by an active conversation or a running session")]
    InUse,
    #[error("preset is invalid")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Storage(StorageError),
}

impl From<StorageError> for PresetError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound => Self::NotFound,
            StorageError::AlreadyExists => Self::AlreadyExists,
            StorageError::PresetInUse => Self::InUse,
            other => Self::Storage(other),
        }
    }
}

/// Which provider credentials the environment holds, to pick a working default model.
#[derive(Debug, Clone, Copy, Default)]
pub struct AvailableProviders {
    pub openai: bool,
    pub anthropic: bool,
}

/// Id of the preset seeded on an empty database.
pub const SEEDED_PRESET_ID: &str = "default";

/// Preset use cases.
pub struct PresetService {
    repo: Arc<dyn PresetRepo>,
    /// Checks a preset's paths against the service's protected files.
    environments: Arc<dyn EnvironmentFactory>,
    /// Told when a preset changes or goes, so its MCP servers are not reused.
    tool_servers: Option<Arc<dyn ToolServers>>,
}

impl PresetService {
    pub fn new(repo: Arc<dyn PresetRepo>, environments: Arc<dyn EnvironmentFactory>) -> Self {
        Self {
            repo,
            environments,
            tool_servers: None,
        }
    }

    /// Stops a preset's MCP servers when it is updated or deleted.
    #[must_use]
    pub fn with_tool_servers(mut self, servers: Arc<dyn ToolServers>) -> Self {
        self.tool_servers = Some(servers);
        self
    }

    async fn release_servers(&self, preset_id: &PresetId) {
        if let Some(servers) = &self.tool_servers {
            servers.release(preset_id).await;
        }
    }

    /// Validates and stores a new preset; timestamps are set here.
    pub async fn create(&self, mut preset: Preset) -> Result<Preset, PresetError> {
        self.check(&preset).await?;
        let at = now();
        preset.created_at = at;
        preset.updated_at = at;
        self.repo.create_preset(&preset).await?;
        Ok(preset)
    }

    /// Applies a partial update; the result must pass validation as a whole.
    pub async fn update(
        &self,
        preset_id: &PresetId,
        patch: PresetPatch,
    ) -> Result<Preset, PresetError> {
        let mut preset = self.repo.get_preset(preset_id).await?;
        patch.apply(&mut preset);
        self.check(&preset).await?;
        preset.updated_at = now().max(preset.updated_at);
        self.repo.update_preset(&preset).await?;
        self.release_servers(preset_id).await;
        Ok(preset)
    }

    pub async fn get(&self, preset_id: &PresetId) -> Result<Preset, PresetError> {
        Ok(self.repo.get_preset(preset_id).await?)
    }

    pub async fn list(&self) -> Result<Vec<Preset>, PresetError> {
        Ok(self.repo.list_presets().await?)
    }

    pub async fn delete(&self, preset_id: &PresetId) -> Result<(), PresetError> {
        self.repo.delete_preset(preset_id).await?;
        self.release_servers(preset_id).await;
        Ok(())
    }

    /// On an empty database, stores a default preset that works out of the box: a real
    /// provider's model when its key is present, otherwise the built-in `test:echo`.
    /// Returns the seeded preset, or `None` when presets already existed.
    pub async fn seed_default(
        &self,
        providers: AvailableProviders,
    ) -> Result<Option<Preset>, PresetError> {
        if !self.repo.presets_empty().await? {
            return Ok(None);
        }
        let model = if providers.openai {
            "openai:gpt-4o-mini"
        } else if providers.anthropic {
            "anthropic:claude-sonnet-4"
        } else {
            "test:echo"
        };
        let at = now();
        let preset = Preset {
            preset_id: PresetId::from(SEEDED_PRESET_ID),
            name: "Default agent".to_owned(),
            description: Some("Seeded on first start; edit or replace it.".to_owned()),
            model: ModelSettings {
                name: model.to_owned(),
                ..ModelSettings::default()
            },
            system_prompt: "You are a helpful agent working in {{ cwd }}. Today is {{ date }}."
                .to_owned(),
            toolsets: ["core", "filesystem", "shell", "task", "context"]
                .into_iter()
                .map(|name| ToolsetSpec {
                    toolset_name: name.to_owned(),
                    enabled: true,
                    exclude_tools: Vec::new(),
                })
                .collect(),
            environment: Default::default(),
            subagents: Default::default(),
            tool_config: Default::default(),
            limits: Default::default(),
            mcp_servers: Vec::new(),
            is_default: true,
            created_at: at,
            updated_at: at,
        };
        match self.repo.create_preset(&preset).await {
            Ok(()) => Ok(Some(preset)),
            // Another starter won the race: its seed is as good as ours.
            Err(StorageError::AlreadyExists) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn check(&self, preset: &Preset) -> Result<(), PresetError> {
        // Before the lookups below: at most MAX_LIST_ITEMS refs, each a short id.
        let too_long = preset_lengths::check(preset);
        if !too_long.is_empty() {
            return Err(PresetError::Invalid(too_long));
        }
        let mut missing = Vec::new();
        for r in &preset.subagents.refs {
            if r.preset_id == preset.preset_id {
                continue;
            }
            match self.repo.get_preset(&r.preset_id).await {
                Ok(_) => {}
                Err(StorageError::NotFound) => missing.push(r.preset_id.clone()),
                Err(e) => return Err(e.into()),
            }
        }
        let mut errors = validate(preset, &missing);
        errors.extend(
            self.environments
                .check_paths(&preset.environment)
                .await
                .into_iter()
                .map(FieldError::from),
        );
        if errors.is_empty() {
            Ok(())
        } else {
            Err(PresetError::Invalid(errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use mockall::predicate::eq;
    use ports::{SubagentRef, mocks::MockPresetRepo};

    use super::*;

    fn no_protected_paths() -> Arc<dyn EnvironmentFactory> {
        let mut environments = ports::mocks::MockEnvironmentFactory::new();
        environments.expect_check_paths().returning(|_| Vec::new());
        Arc::new(environments)
    }

    fn preset(id: &str) -> Preset {
        Preset::new(id, "n", "test:echo")
    }

    #[tokio::test]
    async fn create_rejects_a_missing_subagent_ref_without_storing() {
        let mut repo = MockPresetRepo::new();
        repo.expect_get_preset()
            .with(eq(PresetId::from("ghost")))
            .returning(|_| Err(StorageError::NotFound));
        repo.expect_create_preset().never();
        let mut p = preset("main");
        p.subagents.refs.push(SubagentRef {
            preset_id: "ghost".into(),
            name: "g".into(),
            description: String::new(),
            instruction: None,
        });
        let err = PresetService::new(Arc::new(repo), no_protected_paths())
            .create(p)
            .await
            .unwrap_err();
        match err {
            PresetError::Invalid(fields) => {
                assert_eq!(fields[0].field, "subagents.refs[0].preset_id")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn update_merges_validates_and_keeps_created_at() {
        let stored = preset("p");
        let created = stored.created_at;
        let mut repo = MockPresetRepo::new();
        let s = stored.clone();
        repo.expect_get_preset().returning(move |_| Ok(s.clone()));
        repo.expect_update_preset()
            .withf(move |p| {
                p.name == "renamed" && p.model.name == "test:echo" && p.created_at == created
            })
            .times(1)
            .returning(|_| Ok(()));
        let svc = PresetService::new(Arc::new(repo), no_protected_paths());
        let out = svc
            .update(
                &"p".into(),
                PresetPatch {
                    name: Some("renamed".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(out.name, "renamed");
        assert!(out.updated_at >= stored.updated_at);
    }

    #[tokio::test]
    async fn update_that_breaks_a_rule_is_refused() {
        let mut repo = MockPresetRepo::new();
        repo.expect_get_preset().returning(|_| Ok(preset("p")));
        repo.expect_update_preset().never();
        let patch = PresetPatch {
            model: Some(ModelSettings {
                name: String::new(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let err = PresetService::new(Arc::new(repo), no_protected_paths())
            .update(&"p".into(), patch)
            .await
            .unwrap_err();
        assert!(
            matches!(err, PresetError::Invalid(ref f) if f[0].field == "model.name"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn storage_errors_map_to_use_case_errors() {
        let mut repo = MockPresetRepo::new();
        repo.expect_delete_preset()
            .returning(|_| Err(StorageError::PresetInUse));
        repo.expect_get_preset()
            .returning(|_| Err(StorageError::NotFound));
        let svc = PresetService::new(Arc::new(repo), no_protected_paths());
        assert!(matches!(
            svc.delete(&"p".into()).await,
            Err(PresetError::InUse)
        ));
        assert!(matches!(
            svc.get(&"p".into()).await,
            Err(PresetError::NotFound)
        ));
    }

    #[tokio::test]
    async fn seeding_picks_a_model_that_works() {
        for (providers, model) in [
            (AvailableProviders::default(), "test:echo"),
            (
                AvailableProviders {
                    openai: false,
                    anthropic: true,
                },
                "anthropic:claude-sonnet-4",
            ),
            (
                AvailableProviders {
                    openai: true,
                    anthropic: true,
                },
                "openai:gpt-4o-mini",
            ),
        ] {
            let mut repo = MockPresetRepo::new();
            repo.expect_presets_empty().returning(|| Ok(true));
            repo.expect_create_preset()
                .withf(move |p| {
                    p.model.name == model && p.is_default && p.preset_id == SEEDED_PRESET_ID
                })
                .times(1)
                .returning(|_| Ok(()));
            let seeded = PresetService::new(Arc::new(repo), no_protected_paths())
                .seed_default(providers)
                .await
                .unwrap();
            let seeded = seeded.unwrap();
            assert!(
                validate(&seeded, &[]).is_empty(),
                "the seed passes its own validation"
            );
        }
    }

    #[tokio::test]
    async fn seeding_leaves_existing_presets_alone() {
        let mut repo = MockPresetRepo::new();
        repo.expect_presets_empty().returning(|| Ok(false));
        repo.expect_create_preset().never();
        let out = PresetService::new(Arc::new(repo), no_protected_paths())
            .seed_default(AvailableProviders::default())
            .await
            .unwrap();
        assert!(out.is_none());
    }
}
