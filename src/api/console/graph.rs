//! The Model page's drawing (DESIGN §10): the model's types as boxes listing their relations, and
//! an edge for each reference between types, drawn on the server as SVG (no script, no layout
//! library: a grid of boxes and straight edges read well for models of a few dozen types, and the
//! page stays readable without JavaScript).
//!
//! Edges go from the subject type to the type whose relation admits or follows it: `direct` for a
//! type restriction (`[user]`), `userset` for `[group#member]`, `tupleset` for the parents of an
//! arrow (`viewer from parent`). Boxes sit in rows of [`COLUMNS`], in the model's order.
//! Invariant: every text in the drawing is escaped by maud; the size is a function of the model.
//! Must not import `store`, `index` or `eval`.

use crate::model::{Model, Rewrite, TypeDef};
use maud::{html, Markup};
use std::collections::BTreeSet;

/// Boxes per row.
const COLUMNS: usize = 4;
const BOX_WIDTH: usize = 220;
const GAP: usize = 60;
const LINE: usize = 16;
const HEADER: usize = 24;

/// The kind of an edge, as its class and its legend say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum EdgeKind {
    Direct,
    Userset,
    Tupleset,
}

impl EdgeKind {
    fn class(self) -> &'static str {
        match self {
            EdgeKind::Direct => "direct",
            EdgeKind::Userset => "userset",
            EdgeKind::Tupleset => "tupleset",
        }
    }
}

/// The tuplesets an arrow of `rewrite` follows.
fn tuplesets<'r>(rewrite: &'r Rewrite, out: &mut Vec<&'r str>) {
    match rewrite {
        Rewrite::TupleToUserset { tupleset, .. } | Rewrite::TupleToUsersetAll { tupleset, .. } => out.push(tupleset),
        Rewrite::Union(children) | Rewrite::Intersection(children) => {
            children.iter().for_each(|child| tuplesets(child, out));
        }
        Rewrite::Exclusion { base, subtract } => {
            tuplesets(base, out);
            tuplesets(subtract, out);
        }
        Rewrite::This | Rewrite::Computed { .. } => {}
    }
}

/// Every (from type, to type, kind) edge of the model, once each.
fn edges(model: &Model) -> BTreeSet<(usize, usize, EdgeKind)> {
    let position = |name: &str| model.types.iter().position(|t| t.name == name);
    let mut edges = BTreeSet::new();
    for (to, type_def) in model.types.iter().enumerate() {
        for relation in &type_def.relations {
            for restriction in &relation.directly_related {
                let kind = if restriction.relation.is_some() { EdgeKind::Userset } else { EdgeKind::Direct };
                if let Some(from) = position(&restriction.type_name) {
                    edges.insert((from, to, kind));
                }
            }
            let mut arrows = Vec::new();
            tuplesets(&relation.rewrite, &mut arrows);
            for tupleset in arrows {
                let parents = type_def.relations.iter().filter(|r| r.name == tupleset);
                for parent in parents.flat_map(|r| &r.directly_related) {
                    if let Some(from) = position(&parent.type_name) {
                        edges.insert((from, to, EdgeKind::Tupleset));
                    }
                }
            }
        }
    }
    edges
}

fn box_height(type_def: &TypeDef) -> usize {
    HEADER + LINE * type_def.relations.len() + 8
}

/// The model as an SVG drawing.
pub(super) fn draw(model: &Model) -> Markup {
    let rows: Vec<&[TypeDef]> = model.types.chunks(COLUMNS).collect();
    let row_heights: Vec<usize> = rows.iter().map(|row| row.iter().map(box_height).max().unwrap_or(HEADER)).collect();
    let mut row_tops = Vec::with_capacity(rows.len());
    let mut top = GAP / 2;
    for height in &row_heights {
        row_tops.push(top);
        top += height + GAP;
    }
    let place = |index: usize| {
        let (row, column) = (index / COLUMNS, index % COLUMNS);
        (GAP / 2 + column * (BOX_WIDTH + GAP), row_tops.get(row).copied().unwrap_or(0))
    };
    let width = GAP + COLUMNS.min(model.types.len().max(1)) * (BOX_WIDTH + GAP);
    let center = |index: usize| {
        let (x, y) = place(index);
        let height = model.types.get(index).map_or(HEADER, box_height);
        (x + BOX_WIDTH / 2, y + height / 2)
    };
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="graph" role="img" aria-label="Types and relations of the model"
            width=(width) height=(top) viewBox={ "0 0 " (width) " " (top) } {
            defs {
                marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z";
                }
            }
            @for (from, to, kind) in edges(model) {
                @let ((x1, y1), (x2, y2)) = (center(from), center(to));
                @if from == to {
                    @let (x, y) = place(to);
                    path class={ "edge " (kind.class()) } marker-end="url(#arrow)"
                        d={ "M " (x + BOX_WIDTH) " " (y + 10) " c 40 -20 40 40 0 30" } fill="none" {
                        title { (model.types[from].name) " → " (model.types[to].name) " (" (kind.class()) ")" }
                    }
                } @else {
                    line class={ "edge " (kind.class()) } x1=(x1) y1=(y1) x2=(x2) y2=(y2) marker-end="url(#arrow)" {
                        title { (model.types[from].name) " → " (model.types[to].name) " (" (kind.class()) ")" }
                    }
                }
            }
            @for (index, type_def) in model.types.iter().enumerate() {
                @let (x, y) = place(index);
                g class="type" {
                    rect x=(x) y=(y) width=(BOX_WIDTH) height=(box_height(type_def)) rx="4";
                    text x=(x + 8) y=(y + 17) class="type-name" { (type_def.name) }
                    @for (line, relation) in type_def.relations.iter().enumerate() {
                        text x=(x + 8) y=(y + HEADER + 12 + line * LINE) class="relation" { (relation.name) }
                    }
                }
            }
        }
        p.legend {
            "Edges run from a subject type to the type that admits it: "
            span.direct { "solid: direct" } ", " span.userset { "dashed: userset" } ", "
            span.tupleset { "dotted: parent of an arrow (tupleset)" } "."
        }
    }
}
