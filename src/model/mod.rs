//! Authorization models: OpenFGA's DSL (schema 1.1, and 1.2 modular models) and JSON, read into
//! one typed [`Model`] and printed back as either.
//!
//! What it owns: the model types below (the rewrite IR that `eval` walks), the DSL parser
//! (`dsl.rs`), the JSON form (`json.rs`), semantic validation (`validate.rs`), printing, modular
//! models (`module.rs`) and their `fga.mod` manifests (`fgamod.rs`).
//! Invariant: a `Model` returned by [`Model::parse_dsl`] or [`Model::from_json`] has passed
//! validation: every type, relation and condition it names exists, and every tupleset relation
//! is direct-only. Errors are gathered (never just the first) with line:column where text exists.
//! Must not import `index`, `eval`, `engine`, `store`, `api`, nor `sled`, `tokio`, `axum`, `serde_json`.

mod dsl;
mod error;
mod fgamod;
mod json;
mod lexer;
mod module;
mod print;
mod validate;
mod zed;

pub use error::{SchemaError, SchemaErrorKind, SchemaErrors, Span};
pub use fgamod::{parse_fga_mod, ModFileError, ModManifest, ModProperty, ModRange};
pub use json::{
    JsonCondition, JsonConditionMetadata, JsonDifference, JsonEmpty, JsonModel, JsonObjectRelation, JsonParamType,
    JsonRelationMetadata, JsonRelationReference, JsonSourceInfo, JsonTupleToUserset, JsonTypeDefinition,
    JsonTypeMetadata, JsonUserset, JsonUsersets, OrderedMap, ONEOF_ERROR,
};
pub use module::{combine as combine_modules, ModularModel, ModuleError, ModuleFile, SourceOrigin};

/// A checked authorization model.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// `1.1` for OpenFGA schema 1.1 models.
    pub schema_version: String,
    /// Type definitions in source order.
    pub types: Vec<TypeDef>,
    /// Condition definitions in source order.
    pub conditions: Vec<ConditionDef>,
}

/// One `type` block.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeDef {
    /// Type name, e.g. `document`.
    pub name: String,
    /// Relations in source order.
    pub relations: Vec<RelationDef>,
    /// Where the type's name is in the source (zeroed for JSON input).
    pub span: Span,
}

/// One `define` line.
#[derive(Debug, Clone, PartialEq)]
pub struct RelationDef {
    /// Relation name, e.g. `viewer`.
    pub name: String,
    /// How the relation is computed.
    pub rewrite: Rewrite,
    /// The direct type restrictions (`[user, group#member, user:*]`); empty if the rewrite has no `This`.
    pub directly_related: Vec<TypeRestriction>,
    /// Where the relation's name is in the source (zeroed for JSON input).
    pub span: Span,
}

/// One entry of a direct type restriction list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TypeRestriction {
    /// The subject type, e.g. `user` or `group`.
    pub type_name: String,
    /// `Some("member")` for `group#member`.
    pub relation: Option<String>,
    /// True for `user:*`.
    pub wildcard: bool,
    /// `Some("cond")` for `user with cond`.
    pub condition: Option<String>,
    /// True for SpiceDB's `user with expiration`: tuples of this kind may carry an expiry.
    pub expiration: bool,
}

/// DSL form: `user`, `user:*`, `group#member`, `user with cond`.
impl std::fmt::Display for TypeRestriction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.type_name)?;
        if self.wildcard {
            f.write_str(":*")?;
        } else if let Some(relation) = &self.relation {
            write!(f, "#{relation}")?;
        }
        if let Some(condition) = &self.condition {
            write!(f, " with {condition}")?;
        }
        Ok(())
    }
}

/// The rewrite IR: how a relation's subjects are computed.
#[derive(Debug, Clone, PartialEq)]
pub enum Rewrite {
    /// Direct tuples on this relation, filtered by the type restrictions.
    This,
    /// Another relation on the same object: `define viewer: editor`.
    Computed {
        /// The relation referred to.
        relation: String,
        /// Where the reference is in the source.
        span: Span,
    },
    /// `computed from tupleset`: follow the tupleset relation's objects, then take `computed` on them.
    TupleToUserset {
        /// The relation on this object whose subjects are the parents (`parent`).
        tupleset: String,
        /// The relation evaluated on each parent (`viewer`).
        computed: String,
        /// Where the expression is in the source.
        span: Span,
    },
    /// SpiceDB's `tupleset.all(computed)`: the subject must hold `computed` on every parent
    /// the tupleset names (and there must be at least one). No OpenFGA DSL form.
    TupleToUsersetAll {
        /// The relation on this object whose subjects are the parents.
        tupleset: String,
        /// The relation evaluated on each parent.
        computed: String,
        /// Where the expression is in the source.
        span: Span,
    },
    /// `a or b`.
    Union(Vec<Rewrite>),
    /// `a and b`.
    Intersection(Vec<Rewrite>),
    /// `base but not subtract`.
    Exclusion {
        /// Who may hold the relation.
        base: Box<Rewrite>,
        /// Who is excluded.
        subtract: Box<Rewrite>,
    },
}

/// A `condition name(p: T, ...) { expr }` block.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionDef {
    /// Condition name.
    pub name: String,
    /// Parameters with their type names, in source order.
    pub parameters: Vec<ConditionParam>,
    /// The CEL expression, verbatim.
    pub expression: String,
    /// Where the condition's name is in the source.
    pub span: Span,
}

/// One typed condition parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionParam {
    /// Parameter name.
    pub name: String,
    /// Parameter type, e.g. `Int`, `List(String)`, `Map(Timestamp)`.
    pub type_name: ParamType,
}

/// The parameter types OpenFGA conditions support.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamType {
    /// `bool`
    Bool,
    /// `string`
    String,
    /// `int`
    Int,
    /// `uint`
    Uint,
    /// `double`
    Double,
    /// `duration`
    Duration,
    /// `timestamp`
    Timestamp,
    /// `ipaddress`
    IpAddress,
    /// `any`
    Any,
    /// `list<T>`
    List(Box<ParamType>),
    /// `map<T>` (keys are strings)
    Map(Box<ParamType>),
}

/// DSL form: `int`, `list<string>`, `map<ipaddress>`.
impl std::fmt::Display for ParamType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamType::Bool => f.write_str("bool"),
            ParamType::String => f.write_str("string"),
            ParamType::Int => f.write_str("int"),
            ParamType::Uint => f.write_str("uint"),
            ParamType::Double => f.write_str("double"),
            ParamType::Duration => f.write_str("duration"),
            ParamType::Timestamp => f.write_str("timestamp"),
            ParamType::IpAddress => f.write_str("ipaddress"),
            ParamType::Any => f.write_str("any"),
            ParamType::List(inner) => write!(f, "list<{inner}>"),
            ParamType::Map(inner) => write!(f, "map<{inner}>"),
        }
    }
}

impl Model {
    /// Parses OpenFGA DSL text and validates it; every problem found is returned.
    pub fn parse_dsl(text: &str) -> Result<Model, SchemaErrors> {
        let (model, source) = dsl::parse(text)?;
        validate::validate(&model, Some(&source))?;
        Ok(model)
    }

    /// As [`Model::parse_dsl`], also returning the warnings `writ validate` prints: what
    /// OpenFGA's language validators flag but its server accepts, such as a rewrite that names
    /// the same operand twice (`owner or owner`, `viewer from parent but not viewer from parent`).
    pub fn parse_dsl_with_warnings(text: &str) -> Result<(Model, Vec<SchemaError>), SchemaErrors> {
        let (model, source) = dsl::parse(text)?;
        let warnings = validate::validate_with_warnings(&model, Some(&source))
            .map_err(|errors| errors.into_iter().map(|(error, _)| error).collect::<Vec<_>>())?;
        Ok((model, warnings))
    }

    /// Parses SpiceDB schema text (`.zed`) and checks it with SpiceDB's rules; every problem
    /// found is returned, with line:column.
    pub fn parse_zed(text: &str) -> Result<Model, SchemaErrors> {
        Ok(zed::parse(text)?)
    }

    /// True when `text` looks like SpiceDB schema (`definition`, `caveat` or `use` first) rather
    /// than OpenFGA DSL (`model`, `type`, `condition`, `module`).
    pub fn looks_like_zed(text: &str) -> bool {
        zed::looks_like_zed(text)
    }

    /// Parses OpenFGA DSL text without semantic validation (grammar errors only), as OpenFGA's
    /// transformer does.
    pub fn parse_dsl_unchecked(text: &str) -> Result<Model, SchemaErrors> {
        Ok(dsl::parse(text)?.0)
    }

    /// Converts OpenFGA's JSON model (already deserialized) and validates it.
    pub fn from_json(json: &JsonModel) -> Result<Model, SchemaErrors> {
        let model = json::from_json(json)?;
        validate::validate(&model, None)?;
        Ok(model)
    }

    /// Converts OpenFGA's JSON model without semantic validation.
    pub fn from_json_unchecked(json: &JsonModel) -> Result<Model, SchemaErrors> {
        Ok(json::from_json(json)?)
    }

    /// Validates a model built by hand (or read unchecked) with OpenFGA's rules.
    pub fn validate(&self) -> Result<(), SchemaErrors> {
        Ok(validate::validate(self, None)?)
    }

    /// This model as OpenFGA's JSON model.
    pub fn to_json(&self) -> JsonModel {
        json::to_json(self)
    }

    /// This model as OpenFGA DSL text. A rewrite the DSL cannot express (see [`Model::try_to_dsl`])
    /// is replaced by a comment naming it.
    pub fn to_dsl(&self) -> String {
        print::to_dsl(self)
    }

    /// This model as OpenFGA DSL text, or an error naming the first relation the DSL cannot
    /// express (e.g. a direct assignment under `but not`).
    pub fn try_to_dsl(&self) -> Result<String, SchemaError> {
        print::try_to_dsl(self)
    }

    /// Looks up a type definition by name.
    pub fn type_def(&self, name: &str) -> Option<&TypeDef> {
        self.types.iter().find(|t| t.name == name)
    }

    /// Looks up a relation definition by type and relation name.
    pub fn relation(&self, type_name: &str, relation: &str) -> Option<&RelationDef> {
        self.type_def(type_name)?.relations.iter().find(|r| r.name == relation)
    }

    /// Looks up a condition definition by name.
    pub fn condition(&self, name: &str) -> Option<&ConditionDef> {
        self.conditions.iter().find(|c| c.name == name)
    }
}

impl TypeDef {
    /// Looks up one of this type's relations.
    pub fn relation(&self, name: &str) -> Option<&RelationDef> {
        self.relations.iter().find(|r| r.name == name)
    }
}
