//! Running one stage: resolving its base, then each instruction against the stage's
//! config and file system view.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::config::{self, DEFAULT_PATH};
use super::context::{SourceFile, SourceKind, SourceTree};
use super::copy::{Chmod, CopyOptions, PendingLayer};
use super::report::{Event, Reporter};
use super::sources::{self, BaseImage};
use super::users::{Owner, resolve_owner};
use super::{BuildError, BuildOptions, NamedContext, rfc3339};
use crate::frontend::expand::Lexer;
use crate::frontend::instructions::{Add, Copy, Instruction};
use crate::frontend::{self, Located};
use crate::ignore::IgnorePatterns;
use crate::layer::index::{FsView, LayerIndex};
use crate::layer::writer::{LayerEntry, LayerWriter};
use crate::oci::digest::Digest;
use crate::oci::image::{ContainerConfig, Descriptor, ImageConfig, RootFs};
use crate::plan::{Base, Plan, Source, Vars};
use crate::platform::Platform;
use crate::store::Store;

/// Where a layer of the image came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerOrigin {
    /// Reused from a base image, by digest.
    Base,
    /// Written by this build.
    Built,
}

/// One layer of a stage: the blob, its diff id and its header index.
#[derive(Clone, Debug)]
pub struct LayerRecord {
    /// The blob's descriptor (OCI media type).
    pub descriptor: Descriptor,
    /// The uncompressed digest.
    pub diff_id: Digest,
    /// The tar headers, for the file system view.
    pub index: Arc<LayerIndex>,
    /// Where it came from.
    pub origin: LayerOrigin,
    /// The image reference the blob can be fetched from when the store lacks it (base
    /// layers are indexed as they stream by, and downloaded only when their bytes are
    /// needed).
    pub source: Option<String>,
}

impl LayerRecord {
    /// The record of a layer this build wrote.
    pub fn built(layer: &crate::layer::writer::Layer, index: Arc<LayerIndex>) -> LayerRecord {
        LayerRecord {
            descriptor: Descriptor {
                media_type: layer.media_type.to_string(),
                digest: layer.digest,
                size: layer.size,
                annotations: None,
                platform: None,
            },
            diff_id: layer.diff_id,
            index,
            origin: LayerOrigin::Built,
            source: None,
        }
    }
}

/// A stage after running: its layers, config and variables.
#[derive(Clone, Debug)]
pub struct StageState {
    /// The stage's display name.
    pub name: String,
    /// Layers, lowest first.
    pub layers: Vec<LayerRecord>,
    /// The image config so far.
    pub config: ImageConfig,
    /// Variables visible to expansion: the config's Env, then ARGs and ENVs in order.
    pub vars: Vars,
    /// Whether this stage (not its base) set CMD.
    pub cmd_set: bool,
    /// The stage's own ARG values, in order: RUN sees them, the image does not keep them.
    pub args: Vec<(String, String)>,
    /// The merged file system view of `layers`, kept in step with them: built once from
    /// the base, then extended by each layer the stage adds.
    pub view: FsView,
}

impl StageState {
    /// A stage state over `layers`, building their merged view.
    fn new(name: String, layers: Vec<LayerRecord>, config: ImageConfig) -> StageState {
        let view = FsView::new(layers.iter().map(|l| Arc::clone(&l.index)).collect());
        StageState {
            name,
            layers,
            vars: vars_of(&config),
            config,
            cmd_set: false,
            args: Vec::new(),
            view,
        }
    }

    pub(super) fn workdir(&self) -> String {
        match self.config.config.working_dir.as_deref() {
            Some(dir) if !dir.is_empty() => dir.to_string(),
            _ => "/".to_string(),
        }
    }
}

/// An empty image config for `platform`, as BuildKit starts FROM scratch.
fn scratch_config(platform: &Platform) -> ImageConfig {
    ImageConfig {
        created: None,
        author: None,
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: (!platform.variant.is_empty()).then(|| platform.variant.clone()),
        config: ContainerConfig {
            env: Some(vec![format!("PATH={DEFAULT_PATH}")]),
            working_dir: Some("/".to_string()),
            ..ContainerConfig::default()
        },
        rootfs: RootFs {
            kind: "layers".to_string(),
            diff_ids: Vec::new(),
        },
        history: Vec::new(),
        extra: BTreeMap::new(),
    }
}

/// The variables of a config's `Env`.
fn vars_of(config: &ImageConfig) -> Vars {
    let mut vars = Vars::default();
    for entry in config.config.env.iter().flatten() {
        let (key, value) = entry.split_once('=').unwrap_or((entry.as_str(), ""));
        vars.set(key, value.to_string());
    }
    vars
}

/// What the builder needs for every stage.
pub struct BuilderSetup<'a> {
    /// The content store.
    pub store: &'a Store,
    /// The build's options.
    pub options: &'a BuildOptions,
    /// The plan.
    pub plan: &'a Plan,
    /// The Dockerfile path as shown in messages.
    pub dockerfile_label: String,
    /// The target platform.
    pub platform: Platform,
    /// SOURCE_DATE_EPOCH, if set.
    pub epoch: Option<i64>,
    /// The build's start time.
    pub now: i64,
    /// Where progress goes.
    pub reporter: &'a dyn Reporter,
}

/// Runs stages, keeping each result for later stages.
pub struct Builder<'a> {
    pub(super) setup: BuilderSetup<'a>,
    pub(super) lexer: Lexer,
    pub(super) context: SourceTree,
    pub(super) states: BTreeMap<usize, StageState>,
    images: BTreeMap<String, BaseImage>,
    /// The RUN backend, chosen at the first RUN.
    pub(super) backend: Option<Box<dyn crate::sandbox::Backend>>,
}

impl<'a> Builder<'a> {
    /// Prepares the build context (with its ignore file).
    pub fn new(setup: BuilderSetup<'a>) -> Result<Builder<'a>, BuildError> {
        let options = setup.options;
        let dockerfile = options.dockerfile_path();
        let ignore = match crate::ignore::find_ignore_file(&options.context, &dockerfile) {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|source| BuildError::Io {
                    action: "read the ignore file",
                    path: path.clone(),
                    source,
                })?;
                Some(
                    IgnorePatterns::parse(&text)
                        .map_err(|e| BuildError::Options(format!("{}: {e}", path.display())))?,
                )
            }
            None => None,
        };
        let context = SourceTree::context(&options.context, ignore);
        let lexer = Lexer::new(setup.plan.escape);
        Ok(Builder {
            setup,
            lexer,
            context,
            states: BTreeMap::new(),
            images: BTreeMap::new(),
            backend: None,
        })
    }

    /// Hands out a finished stage.
    pub fn take_stage(&mut self, index: usize) -> Option<StageState> {
        self.states.remove(&index)
    }

    pub(super) fn step_error(
        &self,
        located: &Located,
        message: impl std::fmt::Display,
    ) -> BuildError {
        let first_line = located.node.original.lines().next().unwrap_or_default();
        BuildError::Step {
            file: self.setup.dockerfile_label.clone(),
            line: located.node.start.line,
            column: located.node.start.column,
            instruction: first_line.trim().to_string(),
            message: message.to_string(),
        }
    }

    /// Resolves an image (or the named context replacing it) once per build.
    pub(super) fn image(&mut self, name: &str, platform: &Platform) -> Result<BaseImage, String> {
        let key = format!("{name}|{platform}");
        if let Some(image) = self.images.get(&key) {
            return Ok(image.clone());
        }
        let store = self.setup.store;
        let options = self.setup.options;
        let image = match options.build_contexts.get(name) {
            Some(NamedContext::Dir(dir)) => sources::directory_image(store, dir, self.setup.epoch)?,
            Some(NamedContext::OciLayout { dir, tag }) => {
                sources::layout_image(store, dir, tag.as_deref())?
            }
            Some(NamedContext::Image(reference)) => {
                sources::registry_image(store, reference, platform, &options.registry_access())?
            }
            None => sources::registry_image(store, name, platform, &options.registry_access())?,
        };
        self.setup.reporter.report(&Event::BaseResolved {
            reference: name.to_string(),
            digest: image.manifest_digest.to_string(),
            layers: image.layers.len(),
            size: image.total_size,
        });
        self.images.insert(key, image.clone());
        Ok(image)
    }

    /// Runs stage `index` of the plan; its dependencies must have run.
    pub fn run_stage(&mut self, index: usize) -> Result<(), BuildError> {
        let plan = self.setup.plan;
        let stage = &plan.stages[index];
        let name = stage.display_name();
        let base_text = match &stage.base {
            Base::Scratch => "scratch".to_string(),
            Base::Stage(i) => plan.stages[*i].display_name(),
            Base::Image(image) => image.clone(),
        };
        self.setup.reporter.report(&Event::StageStarted {
            stage: name.clone(),
            base: base_text,
        });
        let platform = stage
            .platform
            .clone()
            .unwrap_or_else(|| self.setup.platform.clone());
        let mut state = match &stage.base {
            Base::Scratch => StageState::new(name.clone(), Vec::new(), scratch_config(&platform)),
            Base::Stage(i) => {
                let parent = self.states.get(i).cloned().ok_or_else(|| {
                    self.step_error(&stage.from, format!("stage {i} was not built before it"))
                })?;
                StageState {
                    name: name.clone(),
                    cmd_set: false,
                    args: Vec::new(),
                    ..parent
                }
            }
            Base::Image(image) => {
                let base = self
                    .image(image, &platform)
                    .map_err(|message| self.step_error(&stage.from, message))?;
                let mut config = base.config.clone();
                // BuildKit gives images without a PATH the default one, so RUN and the
                // container find programs.
                let env = config.config.env.get_or_insert_with(Vec::new);
                if !env.iter().any(|e| e.starts_with("PATH=")) {
                    env.push(format!("PATH={DEFAULT_PATH}"));
                }
                StageState::new(name.clone(), base.layers.clone(), config)
            }
        };
        // Triggers recorded by the base run first, then are dropped from the image.
        let triggers = state.config.config.on_build.take().unwrap_or_default();
        let mut instructions = Vec::new();
        for trigger in &triggers {
            let (dockerfile, diagnostics) = frontend::parse(trigger);
            if let Some(error) = diagnostics
                .iter()
                .find(|d| d.severity == frontend::Severity::Error)
            {
                return Err(self.step_error(
                    &stage.from,
                    format!(
                        "ONBUILD trigger `{trigger}` of the base is invalid: {}",
                        error.message
                    ),
                ));
            }
            instructions.extend(dockerfile.instructions.into_iter().map(|mut located| {
                located.node.start = stage.from.node.start;
                located
            }));
        }
        instructions.extend(stage.instructions.iter().cloned());
        for located in &instructions {
            let started = Instant::now();
            let layer_size = self.run_instruction(&mut state, located, &stage.sources, index)?;
            self.setup.reporter.report(&Event::StepFinished {
                stage: name.clone(),
                instruction: located.node.original.trim().to_string(),
                layer_size,
                elapsed: started.elapsed(),
            });
        }
        self.states.insert(index, state);
        Ok(())
    }

    pub(super) fn created(&self) -> String {
        rfc3339(self.setup.epoch.unwrap_or(self.setup.now))
    }

    fn copy_options(&self) -> CopyOptions {
        CopyOptions {
            owner: None,
            chmod: None,
            epoch: self.setup.epoch,
            now: self.setup.now,
        }
    }

    /// Runs one instruction; returns the size of the layer it added, if any.
    fn run_instruction(
        &mut self,
        state: &mut StageState,
        located: &Located,
        _sources: &std::collections::BTreeSet<Source>,
        _stage_index: usize,
    ) -> Result<Option<u64>, BuildError> {
        if let Instruction::Arg(arg) = &located.instruction {
            self.run_arg(state, arg);
            return Ok(None);
        }
        let mut instruction = located.instruction.clone();
        let vars = state.vars.clone();
        let lexer = self.lexer.clone();
        let mut expand = |word: &str| {
            lexer
                .process_word(word, &vars)
                .map(|e| e.value)
                .map_err(|e| e.message)
        };
        instruction
            .expand(&mut expand)
            .map_err(|e| self.step_error(located, e))?;
        let mut raw = Lexer::new('\\');
        raw.skip_process_quotes = true;
        let mut expand_raw = |word: &str| {
            raw.process_word(word, &vars)
                .map(|e| e.value)
                .map_err(|e| e.message)
        };
        instruction
            .expand_heredocs(&mut expand_raw)
            .map_err(|e| self.step_error(located, e))?;
        let created = self.created();
        match &instruction {
            Instruction::Run(run) => self.run_run(state, located, run),
            Instruction::Workdir(workdir) => {
                let size = self.run_workdir(state, located, &workdir.path)?;
                Ok(size)
            }
            Instruction::Copy(copy) => self.run_copy(state, located, copy),
            Instruction::Add(add) => self.run_add(state, located, add),
            Instruction::From(_) => Err(self.step_error(located, "FROM inside a stage")),
            Instruction::Arg(_) => Ok(None),
            other => {
                let history = config::apply_metadata(&mut state.config, other, &mut state.cmd_set)
                    .map_err(|e| self.step_error(located, e))?;
                if let Instruction::Env(env) = other {
                    for pair in &env.vars {
                        state.vars.set(&pair.key, pair.value.clone());
                    }
                }
                if let Some(history) = history {
                    config::add_history(&mut state.config, history, true, &created);
                }
                Ok(None)
            }
        }
    }

    /// ARG: a build argument wins, then the default (expanded), then the global value.
    fn run_arg(&self, state: &mut StageState, arg: &crate::frontend::instructions::Arg) {
        let mut parts = Vec::new();
        for (key, default) in &arg.args {
            let value = match (self.setup.options.build_args.get(key), default) {
                (Some(value), _) => Some(value.clone()),
                (None, Some(default)) => Some(
                    self.lexer
                        .process_word(default, &state.vars)
                        .map(|e| e.value)
                        .unwrap_or_default(),
                ),
                (None, None) => self.setup.plan.global_arg(key).map(str::to_string),
            };
            match value {
                Some(value) => {
                    parts.push(format!("{key}={value}"));
                    state.args.retain(|(k, _)| k != key);
                    state.args.push((key.clone(), value.clone()));
                    state.vars.set(key, value);
                }
                None => parts.push(key.clone()),
            }
        }
        let created = self.created();
        config::add_history(
            &mut state.config,
            format!("ARG {}", parts.join(" ")),
            true,
            &created,
        );
    }

    /// The owner files are written with: `--chown`, resolved in the stage's files.
    fn owner(&self, state: &StageState, spec: Option<&str>) -> Result<Option<Owner>, String> {
        let Some(spec) = spec.filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let passwd = state.view.small_file("etc/passwd");
        let group = state.view.small_file("etc/group");
        resolve_owner(spec, passwd, group)
            .map(Some)
            .map_err(|e| e.to_string())
    }

    /// Writes `entries` as a new layer of `state`; returns its compressed size.
    pub(super) fn commit_layer(
        &self,
        state: &mut StageState,
        entries: Vec<LayerEntry>,
        history: String,
    ) -> Result<Option<u64>, BuildError> {
        let created = self.created();
        if entries.is_empty() {
            config::add_history(&mut state.config, history, true, &created);
            return Ok(None);
        }
        let mut writer = LayerWriter::new(self.setup.store, self.setup.options.compression)?;
        for entry in &entries {
            writer.append(entry)?;
        }
        let (layer, index) = writer.finish()?;
        let index = Arc::new(index);
        state.view.push(Arc::clone(&index));
        state.layers.push(LayerRecord::built(&layer, index));
        config::add_history(
            &mut state.config,
            format!("{history} # buildkit"),
            false,
            &created,
        );
        Ok(Some(layer.size))
    }

    /// WORKDIR: sets the directory and creates it (owned by USER) when missing.
    fn run_workdir(
        &self,
        state: &mut StageState,
        located: &Located,
        path: &str,
    ) -> Result<Option<u64>, BuildError> {
        let workdir = normalize_path(&state.workdir(), path);
        state.config.config.working_dir = Some(workdir.clone());
        let history = format!("WORKDIR {workdir}");
        if workdir == "/" {
            config::add_history(&mut state.config, history, true, &self.created());
            return Ok(None);
        }
        let user = state.config.config.user.clone();
        let owner = self
            .owner(state, user.as_deref())
            .map_err(|e| self.step_error(located, e))?;
        let mut pending = PendingLayer::new(&state.view);
        let options = CopyOptions {
            owner,
            ..self.copy_options()
        };
        pending.ensure_dir(workdir.trim_start_matches('/'), &options);
        let entries = if pending.is_empty() {
            Vec::new()
        } else {
            pending.into_entries()
        };
        // The layer carries no `# buildkit` suffix for WORKDIR in BuildKit's history.
        let created = self.created();
        if entries.is_empty() {
            config::add_history(&mut state.config, history, true, &created);
            return Ok(None);
        }
        let size = self.commit_layer(state, entries, history)?;
        if let Some(last) = state.config.history.last_mut() {
            if let Some(text) = last.created_by.as_mut() {
                *text = text.trim_end_matches(" # buildkit").to_string();
            }
        }
        Ok(size)
    }

    /// The layers of `from`, a stage (by name or index) built before or an image, with how
    /// messages name it.
    pub(super) fn layers_of(&mut self, from: &str) -> Result<(Vec<LayerRecord>, String), String> {
        let plan = self.setup.plan;
        let lowered = from.to_ascii_lowercase();
        let stage_index = match from.parse::<usize>() {
            Ok(index) => Some(index),
            Err(_) => plan
                .stages
                .iter()
                .position(|s| s.name.as_deref() == Some(&lowered)),
        };
        match stage_index {
            Some(index) => {
                let source = self
                    .states
                    .get(&index)
                    .ok_or_else(|| format!("stage `{from}` was not built before this step"))?;
                Ok((source.layers.clone(), format!("stage `{}`", source.name)))
            }
            None => {
                let platform = self.setup.platform.clone();
                let image = self.image(from, &platform)?;
                Ok((image.layers, format!("image `{from}`")))
            }
        }
    }

    /// Files of another stage or image a COPY reads from, extracted selectively.
    fn extracted_tree(
        &mut self,
        located: &Located,
        from: &str,
        paths: &[String],
    ) -> Result<(Option<tempfile::TempDir>, SourceTree), BuildError> {
        // A named context that is a directory is read in place, like the build context.
        if let Some(NamedContext::Dir(dir)) = self.setup.options.build_contexts.get(from) {
            return Ok((None, SourceTree::context(dir, None)));
        }
        let (layers, label) = self
            .layers_of(from)
            .map_err(|message| self.step_error(located, message))?;
        let access = self.setup.options.registry_access();
        sources::ensure_blobs(self.setup.store, &layers, &access)
            .map_err(|e| self.step_error(located, e))?;
        let (dir, tree) = sources::extract_sources(self.setup.store, &layers, paths, label)
            .map_err(|e| self.step_error(located, e))?;
        Ok((Some(dir), tree))
    }

    fn run_copy(
        &mut self,
        state: &mut StageState,
        located: &Located,
        copy: &Copy,
    ) -> Result<Option<u64>, BuildError> {
        let request = CopyRequest {
            sources: &copy.sources,
            heredocs: &copy.heredocs,
            dest: &copy.dest,
            chown: copy.chown.as_deref(),
            chmod: copy.chmod.as_deref(),
            exclude: &copy.exclude,
            parents: copy.parents,
            from: copy.from.as_deref(),
            unpack: false,
            checksum: None,
            keyword: "COPY",
        };
        self.run_copy_request(state, located, &request)
    }

    fn run_add(
        &mut self,
        state: &mut StageState,
        located: &Located,
        add: &Add,
    ) -> Result<Option<u64>, BuildError> {
        let request = CopyRequest {
            sources: &add.sources,
            heredocs: &add.heredocs,
            dest: &add.dest,
            chown: add.chown.as_deref(),
            chmod: add.chmod.as_deref(),
            exclude: &add.exclude,
            parents: false,
            from: None,
            unpack: add.unpack.unwrap_or(true),
            checksum: add.checksum.as_deref(),
            keyword: "ADD",
        };
        self.run_copy_request(state, located, &request)
    }

    fn run_copy_request(
        &mut self,
        state: &mut StageState,
        located: &Located,
        request: &CopyRequest<'_>,
    ) -> Result<Option<u64>, BuildError> {
        let fail = |this: &Self, message: String| this.step_error(located, message);
        let dest = absolute_dest(&state.workdir(), request.dest);
        let sources_total = request.sources.len() + request.heredocs.len();
        let wildcard = request
            .sources
            .iter()
            .any(|s| super::context::has_wildcards(s));
        if (sources_total > 1 || wildcard) && !dest.ends_with('/') {
            return Err(fail(
                self,
                format!(
                    "when using {} with more than one source file, the destination must be a \
                     directory and end with a /",
                    request.keyword
                ),
            ));
        }
        if request.checksum.is_some()
            && !(request.sources.len() == 1 && sources::is_url(&request.sources[0]))
        {
            return Err(fail(
                self,
                "checksum requires exactly one HTTP(S) source".to_string(),
            ));
        }
        let owner = self
            .owner(state, request.chown)
            .map_err(|e| fail(self, e))?;
        let chmod = match request.chmod {
            Some(text) if !text.is_empty() => {
                Some(Chmod::parse(text).map_err(|e| fail(self, e.to_string()))?)
            }
            _ => None,
        };
        let options = CopyOptions {
            owner,
            chmod,
            ..self.copy_options()
        };
        let exclude = if request.exclude.is_empty() {
            None
        } else {
            Some(
                IgnorePatterns::from_patterns(request.exclude)
                    .map_err(|e| fail(self, e.to_string()))?,
            )
        };
        let local: Vec<String> = request
            .sources
            .iter()
            .filter(|s| !sources::is_url(s))
            .cloned()
            .collect();
        let extracted = match request.from {
            Some(from) => Some(self.extracted_tree(located, from, &local)?),
            None => None,
        };
        let tree = match &extracted {
            Some((_, tree)) => tree,
            None => &self.context,
        };
        let scratch = self.setup.store.temp_dir()?;
        let mut pending = PendingLayer::new(&state.view);
        for source in request.sources {
            if sources::is_url(source) {
                if request.keyword == "COPY" {
                    return Err(fail(self, "source can't be a URL for COPY".to_string()));
                }
                let file = sources::download(source, request.checksum, scratch.path())
                    .map_err(|e| fail(self, e))?;
                let name = sources::url_file_name(source);
                pending.add_content(&file, &name, &dest, &options);
                continue;
            }
            if sources::is_git(source) {
                // FIXME: ADD of a git repository is refused; BuildKit clones it. Fixed:
                // clone with the git CLI into the store and copy its tree.
                return Err(fail(
                    self,
                    format!("`{source}`: git sources are not supported yet"),
                ));
            }
            let matched = tree
                .matches(source)
                .map_err(|e| fail(self, e.to_string()))?;
            for path in matched {
                if request.unpack {
                    let file = tree.stat(&path).map_err(|e| fail(self, e.to_string()))?;
                    if let SourceKind::File(_) = file.kind {
                        if let Some(archive) =
                            sources::open_archive(&file.disk_path, scratch.path())
                                .map_err(|e| fail(self, e))?
                        {
                            let target = if dest.ends_with('/') {
                                dest.clone()
                            } else {
                                format!("{dest}/")
                            };
                            pending
                                .copy_filtered(&archive, "", &target, &options, exclude.as_ref())
                                .map_err(|e| fail(self, e.to_string()))?;
                            continue;
                        }
                    }
                }
                let target = if request.parents {
                    parents_dest(&dest, source, &path, tree)
                } else {
                    dest.clone()
                };
                pending
                    .copy_filtered(tree, &path, &target, &options, exclude.as_ref())
                    .map_err(|e| fail(self, e.to_string()))?;
            }
        }
        for (number, heredoc) in request.heredocs.iter().enumerate() {
            let path = scratch.path().join(format!("heredoc-{number}"));
            std::fs::write(&path, heredoc.content.as_bytes()).map_err(|source| BuildError::Io {
                action: "write a heredoc",
                path: path.clone(),
                source,
            })?;
            let file = SourceFile {
                path: heredoc.path.clone(),
                disk_path: path,
                kind: SourceKind::File(heredoc.content.len() as u64),
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: self.setup.epoch.unwrap_or(self.setup.now),
            };
            let name = heredoc
                .path
                .rsplit('/')
                .next()
                .unwrap_or(&heredoc.path)
                .to_string();
            pending.add_content(&file, &name, &dest, &options);
        }
        let entries = pending.into_entries();
        let history = copy_history(request);
        self.commit_layer(state, entries, history)
    }
}

/// The parts of COPY and ADD the copy logic needs.
struct CopyRequest<'r> {
    sources: &'r [String],
    heredocs: &'r [crate::frontend::instructions::SourceHeredoc],
    dest: &'r str,
    chown: Option<&'r str>,
    chmod: Option<&'r str>,
    exclude: &'r [String],
    parents: bool,
    from: Option<&'r str>,
    unpack: bool,
    checksum: Option<&'r str>,
    keyword: &'static str,
}

/// BuildKit's history text for COPY and ADD.
fn copy_history(request: &CopyRequest<'_>) -> String {
    let mut text = request.keyword.to_string();
    if request.parents {
        text.push_str(" --parents");
    }
    if let Some(chown) = request.chown {
        text.push_str(&format!(" --chown={chown}"));
    }
    if let Some(chmod) = request.chmod {
        text.push_str(&format!(" --chmod={chmod}"));
    }
    for source in request.sources {
        text.push_str(&format!(" {source}"));
    }
    for heredoc in request.heredocs {
        text.push_str(&format!(" <<{}", heredoc.path));
    }
    text.push_str(&format!(" {}", request.dest));
    text
}

/// Joins a WORKDIR or destination onto the current directory and cleans it.
pub fn normalize_path(current: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{current}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// A COPY destination made absolute against WORKDIR, keeping a trailing `/` (and
/// treating `.` and empty as the directory itself).
pub fn absolute_dest(workdir: &str, dest: &str) -> String {
    let dir_syntax = dest.ends_with('/') || dest.ends_with("/.") || dest == "." || dest.is_empty();
    let cleaned = normalize_path(workdir, dest);
    if dir_syntax && cleaned != "/" {
        format!("{cleaned}/")
    } else if dir_syntax {
        "/".into()
    } else {
        cleaned
    }
}

/// The destination of a `--parents` source: the matched path below the pivot (the
/// part of the source before `/./`, else the root), under `dest`.
fn parents_dest(dest: &str, source: &str, path: &str, tree: &SourceTree) -> String {
    let is_dir = tree.stat(path).is_ok_and(|f| f.kind == SourceKind::Dir);
    let pivot = match source.split_once("/./") {
        Some((pivot, _)) => super::context::components(pivot).join("/"),
        None => String::new(),
    };
    let kept = if pivot.is_empty() {
        path
    } else {
        path.strip_prefix(pivot.as_str())
            .map_or(path, |rest| rest.trim_start_matches('/'))
    };
    let parent = if is_dir {
        kept
    } else {
        kept.rsplit_once('/').map_or("", |(p, _)| p)
    };
    let base = dest.trim_end_matches('/');
    if parent.is_empty() {
        format!("{base}/")
    } else {
        format!("{base}/{parent}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workdirs_and_destinations_resolve_against_workdir() {
        assert_eq!(normalize_path("/", "app"), "/app");
        assert_eq!(normalize_path("/srv", "app/../x"), "/srv/x");
        assert_eq!(normalize_path("/srv", "/abs"), "/abs");
        assert_eq!(normalize_path("/", "../.."), "/");
        assert_eq!(absolute_dest("/srv", "."), "/srv/");
        assert_eq!(absolute_dest("/srv", "x/"), "/srv/x/");
        assert_eq!(absolute_dest("/srv", "x"), "/srv/x");
        assert_eq!(absolute_dest("/", "./"), "/");
        assert_eq!(absolute_dest("/a", "/b/."), "/b/");
    }
}
