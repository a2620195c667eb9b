//! Modular models (schema 1.2): several `.fga` files, each opening with `module NAME`, holding
//! `type`, `extend type` and `condition` blocks, combined into one [`Model`].
//!
//! What it owns: the combination rules OpenFGA's transformer applies (files in the order given;
//! a type defined once across all files; `extend type` adds relations to a type defined in any
//! file; a condition defined once), its errors ("file is not a module", "duplicate type
//! definition T", "duplicate condition C", "extended type T does not exist", "relation R already
//! exists on type T"), semantic validation of the combined model with every error traced back to
//! the file it is about, and the module/file metadata OpenFGA adds to the JSON and DSL forms.
//! Invariant: a [`ModularModel`] returned by [`combine`] has passed validation, and its origin
//! tables are parallel to `model.types`, each type's relations, and `model.conditions`.
//! Must not import anything outside `model`.

use super::dsl::{self, RestrictionSpan, SourceMap};
use super::print;
use super::validate::{self, Origin};
use super::{
    JsonConditionMetadata, JsonModel, JsonSourceInfo, JsonTypeMetadata, Model, SchemaError, SchemaErrorKind,
    SchemaErrors, Span, TypeDef,
};

/// One `.fga` file of a modular model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleFile {
    /// The file's name as the manifest lists it, e.g. `core.fga` or `team1/project.fga`.
    pub name: String,
    /// The file's text.
    pub contents: String,
}

/// A problem in one file of a modular model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleError {
    /// The file the problem is in (`None` for a problem with the model as a whole).
    pub file: Option<String>,
    /// The problem, with its span inside that file.
    pub error: SchemaError,
}

impl std::fmt::Display for ModuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let file = self.file.as_deref().unwrap_or("model");
        match self.error.span {
            Some(s) => write!(f, "{file}:{}:{}: {}", s.line_start + 1, s.column_start + 1, self.error.message),
            None => write!(f, "{file}: {}", self.error.message),
        }
    }
}

impl std::error::Error for ModuleError {}

/// Where a type, relation or condition of a modular model was written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceOrigin {
    /// The module name (`module core` → `core`).
    pub module: String,
    /// The file name.
    pub file: String,
}

/// A combined modular model with the origin of each part.
#[derive(Debug, Clone, PartialEq)]
pub struct ModularModel {
    /// The combined, validated model.
    pub model: Model,
    /// Origin of each type (parallel to `model.types`).
    pub type_origins: Vec<SourceOrigin>,
    /// For each type, the origin of each relation added by `extend type` (`None` for relations
    /// written in the type's own block).
    pub relation_origins: Vec<Vec<Option<SourceOrigin>>>,
    /// Origin of each condition (parallel to `model.conditions`).
    pub condition_origins: Vec<SourceOrigin>,
}

fn module_error(file: &str, message: String, span: Span, symbol: &str) -> ModuleError {
    ModuleError {
        file: Some(file.to_string()),
        error: SchemaError {
            kind: SchemaErrorKind::Semantic("transformation-error".to_string()),
            message,
            span: Some(span),
            symbol: Some(symbol.to_string()),
        },
    }
}

/// One `extend type` block waiting to be merged.
struct Extension {
    origin: SourceOrigin,
    def: TypeDef,
    spans: Vec<Vec<RestrictionSpan>>,
}

/// Combines module files (in the order given) into one model with `schema_version`, validates
/// it, and returns every problem found, each naming its file.
pub fn combine(files: &[ModuleFile], schema_version: &str) -> Result<ModularModel, Vec<ModuleError>> {
    let mut errors = Vec::new();
    let mut out = ModularModel {
        model: Model { schema_version: schema_version.to_string(), types: Vec::new(), conditions: Vec::new() },
        type_origins: Vec::new(),
        relation_origins: Vec::new(),
        condition_origins: Vec::new(),
    };
    let mut source = SourceMap { module: true, ..SourceMap::default() };
    let mut extensions = Vec::new();
    for file in files {
        let (parsed, map) = match dsl::parse(&file.contents) {
            Ok(parsed) => parsed,
            Err(errs) => {
                errors.extend(errs.into_iter().map(|error| ModuleError { file: Some(file.name.clone()), error }));
                continue;
            }
        };
        if !map.module {
            errors.push(module_error(&file.name, "file is not a module".into(), Span::default(), &file.name));
            continue;
        }
        let origin = SourceOrigin { module: map.module_name.clone().unwrap_or_default(), file: file.name.clone() };
        for (i, def) in parsed.types.into_iter().enumerate() {
            let spans = map.restrictions.get(i).cloned().unwrap_or_default();
            if map.extended.contains(&i) {
                extensions.push(Extension { origin: origin.clone(), def, spans });
                continue;
            }
            if out.model.type_def(&def.name).is_some() {
                let msg = format!("duplicate type definition {}", def.name);
                errors.push(module_error(&file.name, msg, def.span, &def.name));
                continue;
            }
            out.relation_origins.push(vec![None; def.relations.len()]);
            out.type_origins.push(origin.clone());
            out.model.types.push(def);
            source.restrictions.push(spans);
        }
        for condition in parsed.conditions {
            if out.model.condition(&condition.name).is_some() {
                let msg = format!("duplicate condition {}", condition.name);
                errors.push(module_error(&file.name, msg, condition.span, &condition.name));
                continue;
            }
            out.condition_origins.push(origin.clone());
            out.model.conditions.push(condition);
        }
    }
    for ext in extensions {
        merge_extension(&mut out, &mut source, ext, &mut errors);
    }
    if let Err(found) = validate::validate_located(&out.model, Some(&source)) {
        for (error, origin) in found {
            errors.push(ModuleError { file: out.file_of(origin), error });
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn merge_extension(out: &mut ModularModel, source: &mut SourceMap, ext: Extension, errors: &mut Vec<ModuleError>) {
    let file = ext.origin.file.clone();
    let Some(i) = out.model.types.iter().position(|t| t.name == ext.def.name) else {
        let msg = format!("extended type {} does not exist", ext.def.name);
        errors.push(module_error(&file, msg, ext.def.span, &ext.def.name));
        return;
    };
    let existing: Vec<String> = out.model.types[i].relations.iter().map(|r| r.name.clone()).collect();
    for (j, relation) in ext.def.relations.into_iter().enumerate() {
        if existing.contains(&relation.name) {
            let msg = format!("relation {} already exists on type {}", relation.name, ext.def.name);
            errors.push(module_error(&file, msg, relation.span, &relation.name));
            continue;
        }
        out.model.types[i].relations.push(relation);
        if let Some(spans) = source.restrictions.get_mut(i) {
            spans.push(ext.spans.get(j).cloned().unwrap_or_default());
        }
        if let Some(origins) = out.relation_origins.get_mut(i) {
            origins.push(Some(ext.origin.clone()));
        }
    }
}

impl ModularModel {
    /// Reads OpenFGA's JSON of a modular model (with `module`/`source_info` metadata) without
    /// semantic validation, as OpenFGA's JSON → DSL transformer does; parts without metadata get
    /// an empty origin.
    pub fn from_json_unchecked(json: &JsonModel) -> Result<ModularModel, SchemaErrors> {
        let model = Model::from_json_unchecked(json)?;
        let origin = |module: &Option<String>, info: &Option<JsonSourceInfo>| SourceOrigin {
            module: module.clone().unwrap_or_default(),
            file: info.as_ref().map(|i| i.file.clone()).unwrap_or_default(),
        };
        let mut out = ModularModel {
            type_origins: Vec::new(),
            relation_origins: Vec::new(),
            condition_origins: Vec::new(),
            model,
        };
        for def in &out.model.types {
            let json_def = json.type_definitions.iter().find(|t| t.type_name == def.name);
            let metadata = json_def.and_then(|t| t.metadata.as_ref());
            out.type_origins.push(metadata.map(|m| origin(&m.module, &m.source_info)).unwrap_or_default());
            let relations = def.relations.iter().map(|r| {
                let meta = metadata.and_then(|m| m.relations.get(&r.name));
                meta.filter(|m| m.module.is_some() || m.source_info.is_some())
                    .map(|m| origin(&m.module, &m.source_info))
            });
            out.relation_origins.push(relations.collect());
        }
        for c in &out.model.conditions {
            let meta = json.conditions.get(&c.name).and_then(|c| c.metadata.as_ref());
            out.condition_origins.push(meta.map(|m| origin(&m.module, &m.source_info)).unwrap_or_default());
        }
        Ok(out)
    }

    /// The distinct module names the model's parts come from, sorted.
    pub fn modules(&self) -> Vec<String> {
        let extended = self.relation_origins.iter().flatten().flatten();
        let mut names: Vec<String> = self
            .type_origins
            .iter()
            .chain(extended)
            .chain(&self.condition_origins)
            .map(|o| o.module.clone())
            .filter(|m| !m.is_empty())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The file a validation error is about.
    fn file_of(&self, origin: Origin) -> Option<String> {
        let found = match origin {
            Origin::Model => None,
            Origin::Type(i) => self.type_origins.get(i),
            Origin::Relation(i, j) => self
                .relation_origins
                .get(i)
                .and_then(|r| r.get(j))
                .and_then(Option::as_ref)
                .or_else(|| self.type_origins.get(i)),
            Origin::Condition(k) => self.condition_origins.get(k),
        };
        found.map(|o| o.file.clone())
    }

    /// The origin of relation `relation` of type `type_name`, when `extend type` added it.
    fn extended_origin(&self, type_name: &str, relation: &str) -> Option<&SourceOrigin> {
        let i = self.model.types.iter().position(|t| t.name == type_name)?;
        let j = self.model.types.get(i)?.relations.iter().position(|r| r.name == relation)?;
        self.relation_origins.get(i)?.get(j)?.as_ref()
    }

    /// OpenFGA's JSON for the combined model, with `module` and `source_info` metadata on types,
    /// extended relations and conditions.
    pub fn to_json(&self) -> JsonModel {
        let mut json = self.model.to_json();
        for (i, def) in json.type_definitions.iter_mut().enumerate() {
            let origin = self.type_origins.get(i).cloned().unwrap_or_default();
            let metadata = def.metadata.get_or_insert_with(JsonTypeMetadata::default);
            metadata.module = Some(origin.module);
            metadata.source_info = Some(JsonSourceInfo { file: origin.file });
            let origins = self.relation_origins.get(i).map(Vec::as_slice).unwrap_or_default();
            for ((_, meta), origin) in metadata.relations.0.iter_mut().zip(origins) {
                if let Some(origin) = origin {
                    meta.module = Some(origin.module.clone());
                    meta.source_info = Some(JsonSourceInfo { file: origin.file.clone() });
                }
            }
        }
        for ((_, condition), origin) in json.conditions.0.iter_mut().zip(&self.condition_origins) {
            condition.metadata = Some(JsonConditionMetadata {
                module: Some(origin.module.clone()),
                source_info: Some(JsonSourceInfo { file: origin.file.clone() }),
            });
        }
        json
    }

    /// The combined model as one DSL text in OpenFGA's order for modular models: types by
    /// (module, file, name); in each type its own relations by name, then extended ones by
    /// (module, file, name); conditions by (module, file, name). With `annotate`, each type,
    /// extended relation and condition carries a `# module: M, file: F` comment, as `fga model get`
    /// prints it.
    pub fn to_dsl(&self, annotate: bool) -> Result<String, SchemaError> {
        let mut out = format!("model\n  schema {}\n", self.model.schema_version);
        let mut types: Vec<(usize, &TypeDef)> = self.model.types.iter().enumerate().collect();
        let type_key = |i: usize| self.type_origins.get(i).cloned().unwrap_or_default();
        types.sort_by(|(a, ta), (b, tb)| {
            let (oa, ob) = (type_key(*a), type_key(*b));
            (&oa.module, &oa.file, &ta.name).cmp(&(&ob.module, &ob.file, &tb.name))
        });
        for (_, def) in types {
            let mut sorted = def.clone();
            sorted.relations.sort_by(|a, b| {
                let key =
                    |name: &str| self.extended_origin(&def.name, name).map(|o| (o.module.clone(), o.file.clone()));
                (key(&a.name), &a.name).cmp(&(key(&b.name), &b.name))
            });
            let block = print::type_block(&sorted)?;
            out.push('\n');
            for line in block.lines() {
                out.push_str(line);
                if annotate {
                    out.push_str(&self.type_line_note(def, line, &type_key));
                }
                out.push('\n');
            }
        }
        let mut conditions: Vec<usize> = (0..self.model.conditions.len()).collect();
        conditions.sort_by_key(|&k| {
            let o = self.condition_origins.get(k).cloned().unwrap_or_default();
            (o.module, o.file, self.model.conditions.get(k).map(|c| c.name.clone()))
        });
        for k in conditions {
            let Some(condition) = self.model.conditions.get(k) else { continue };
            out.push('\n');
            let block = print::condition_block(condition);
            out.push_str(block.trim_end_matches('\n'));
            if let Some(o) = self.condition_origins.get(k).filter(|_| annotate) {
                out.push_str(&format!(" # module: {}, file: {}", o.module, o.file));
            }
            out.push('\n');
        }
        Ok(out)
    }

    /// The comment for one printed line of a type block.
    fn type_line_note(&self, def: &TypeDef, line: &str, type_key: &dyn Fn(usize) -> SourceOrigin) -> String {
        if line.starts_with("type ") {
            let i = self.model.types.iter().position(|t| t.name == def.name).unwrap_or_default();
            let o = type_key(i);
            return format!(" # module: {}, file: {}", o.module, o.file);
        }
        let relation = line.trim_start().strip_prefix("define ").and_then(|rest| rest.split(':').next());
        match relation.and_then(|r| self.extended_origin(&def.name, r)) {
            Some(o) => format!(" # extended by: module: {}, file: {}", o.module, o.file),
            None => String::new(),
        }
    }
}
