//! The Model page's drawing (DESIGN §10): the model's types as boxes listing their relations, and
//! an edge for each reference between types, drawn on the server as SVG (no script, no layout
//! library: a layered layout and curved edges read well for models of a few dozen types, and the
//! page stays readable without JavaScript).
//!
//! Edges go from the subject type to the type whose relation admits or follows it: `direct` for a
//! type restriction (`[user]`), `userset` for `[group#member]`, `tupleset` for the parents of an
//! arrow (`viewer from parent`). Types sit in layers by reference depth (a type is drawn below
//! every type it admits, cycles broken in the model's order), at most [`PER_ROW`] boxes a row, each
//! layer ordered by where its subjects sit so edges cross less; edges are curves with arrowheads,
//! leaving a box at the bottom and entering the next at the top, drawn beneath the boxes so no
//! edge covers a label.
//! Invariants: every text in the drawing is escaped by maud; SVG elements are always closed
//! (`rect {}`), so a label is never a child of a box; the size is a function of the model.
//! Must not import `store`, `index` or `eval`.

use crate::model::{Model, Rewrite, TypeDef};
use maud::{html, Markup};
use std::collections::{BTreeMap, BTreeSet};

/// Boxes per row at most: five fit the console's 1280-pixel window without scrolling sideways.
const PER_ROW: usize = 5;
const BOX_WIDTH: usize = 180;
/// Space between boxes in a row.
const GAP: usize = 36;
/// Space between rows, where the edges bend.
const ROW_GAP: usize = 64;
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

/// Each type's layer: 0 for types that admit no other type, else one below the deepest type it
/// admits. Edges that close a cycle (found by a depth-first walk in the model's order) are left
/// out, so every model gets layers.
fn layers(count: usize, edges: &BTreeSet<(usize, usize, EdgeKind)>) -> Vec<usize> {
    let mut successors = vec![Vec::new(); count];
    for &(from, to, _) in edges {
        if from != to && !successors[from].contains(&to) {
            successors[from].push(to);
        }
    }
    // Depth-first, iteratively: 0 unseen, 1 on the path, 2 done. A successor on the path closes a cycle.
    let mut state = vec![0u8; count];
    let mut forward = vec![Vec::new(); count];
    for root in 0..count {
        if state[root] != 0 {
            continue;
        }
        let mut stack = vec![(root, 0usize)];
        state[root] = 1;
        while let Some((node, next)) = stack.last_mut() {
            let node = *node;
            match successors[node].get(*next).copied() {
                Some(successor) => {
                    *next += 1;
                    match state[successor] {
                        0 => {
                            forward[node].push(successor);
                            state[successor] = 1;
                            stack.push((successor, 0));
                        }
                        2 => forward[node].push(successor),
                        _ => {}
                    }
                }
                None => {
                    state[node] = 2;
                    stack.pop();
                }
            }
        }
    }
    // Longest path over the forward edges; a DAG, so `count` rounds settle it.
    let mut layer = vec![0usize; count];
    for _ in 0..count {
        let mut changed = false;
        for from in 0..count {
            for &to in &forward[from] {
                if layer[to] < layer[from] + 1 {
                    layer[to] = layer[from] + 1;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    layer
}

/// Where each box sits: its left, its top and its height, and the drawing's width and height.
struct Layout {
    boxes: Vec<(usize, usize, usize)>,
    /// The row of each box, top to bottom.
    rows: Vec<usize>,
    width: usize,
    height: usize,
}

impl Layout {
    fn new(model: &Model, edges: &BTreeSet<(usize, usize, EdgeKind)>) -> Layout {
        let count = model.types.len();
        let layer = layers(count, edges);
        let deepest = layer.iter().copied().max().unwrap_or(0);
        let mut column = vec![0.0f64; count];
        let mut row_members: Vec<Vec<usize>> = Vec::new();
        for depth in 0..=deepest {
            // Order a layer by the mean column of the types it admits, then by the model's order.
            let mut members: Vec<(f64, usize)> = (0..count)
                .filter(|&index| layer[index] == depth)
                .map(|index| {
                    let sources: Vec<f64> = edges
                        .iter()
                        .filter(|&&(from, to, _)| to == index && from != index && layer[from] < depth)
                        .map(|&(from, _, _)| column[from])
                        .collect();
                    let mean = if sources.is_empty() {
                        index as f64
                    } else {
                        sources.iter().sum::<f64>() / sources.len() as f64
                    };
                    (mean, index)
                })
                .collect();
            members.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            for chunk in members.chunks(PER_ROW) {
                for (position, &(_, index)) in chunk.iter().enumerate() {
                    column[index] = position as f64;
                }
                row_members.push(chunk.iter().map(|&(_, index)| index).collect());
            }
        }
        let widest = row_members.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let width = widest * BOX_WIDTH + (widest + 1) * GAP;
        let mut boxes = vec![(0, 0, HEADER); count];
        let mut rows = vec![0; count];
        let mut top = ROW_GAP / 2;
        for (row, members) in row_members.iter().enumerate() {
            let row_width = members.len() * BOX_WIDTH + members.len().saturating_sub(1) * GAP;
            let left = (width - row_width) / 2;
            let mut tallest = HEADER;
            for (position, &index) in members.iter().enumerate() {
                let height = model.types.get(index).map_or(HEADER, box_height);
                boxes[index] = (left + position * (BOX_WIDTH + GAP), top, height);
                rows[index] = row;
                tallest = tallest.max(height);
            }
            top += tallest + ROW_GAP;
        }
        Layout { boxes, rows, width, height: top - ROW_GAP / 2 }
    }

    /// The curve of the edge `from` → `to` whose ends sit at `start_x` and `end_x`: down from the
    /// bottom of `from` into the top of `to`, or, when `to` is not below, up from the top of
    /// `from` (and over the row when both share it).
    fn curve(&self, from: usize, to: usize, start_x: usize, end_x: usize) -> String {
        let (_, from_top, from_height) = self.boxes[from];
        let (_, to_top, to_height) = self.boxes[to];
        let (from_row, to_row) = (self.rows[from], self.rows[to]);
        if to_row > from_row {
            let (y1, y2) = (from_top + from_height, to_top);
            let bend = ((y2 - y1) / 2).max(24);
            format!("M {start_x} {y1} C {start_x} {} {end_x} {} {end_x} {y2}", y1 + bend, y2.saturating_sub(bend))
        } else if to_row < from_row {
            let (y1, y2) = (from_top, to_top + to_height);
            let bend = ((y1 - y2) / 2).max(24);
            format!("M {start_x} {y1} C {start_x} {} {end_x} {} {end_x} {y2}", y1.saturating_sub(bend), y2 + bend)
        } else {
            let lift = ROW_GAP / 2 - 4;
            format!(
                "M {start_x} {from_top} C {start_x} {} {end_x} {} {end_x} {to_top}",
                from_top.saturating_sub(lift),
                to_top.saturating_sub(lift)
            )
        }
    }
}

/// One end of an edge on a box's side: the other end's centre, the edge's index, and whether
/// this end is where the edge starts.
type EdgeEnd = (usize, usize, bool);

/// Where each edge leaves and enters its boxes: the edges on one side of a box are spread along
/// it, ordered by where their other end sits, so they neither meet nor cross at the box.
fn anchors(layout: &Layout, edges: &[(usize, usize, EdgeKind)]) -> Vec<(usize, usize)> {
    // (box, side: 0 top 1 bottom) → the edge ends there: (other end's centre, edge, is its start).
    let mut sides: BTreeMap<(usize, u8), Vec<EdgeEnd>> = BTreeMap::new();
    let centre = |index: usize| layout.boxes[index].0 + BOX_WIDTH / 2;
    for (edge, &(from, to, _)) in edges.iter().enumerate() {
        let down = layout.rows[to] > layout.rows[from];
        sides.entry((from, u8::from(down))).or_default().push((centre(to), edge, true));
        sides.entry((to, 0)).or_default().push((centre(from), edge, false));
    }
    let mut ends = vec![(0, 0); edges.len()];
    for ((index, _), mut members) in sides {
        members.sort_unstable();
        let slots = members.len() + 1;
        for (slot, (_, edge, is_start)) in members.into_iter().enumerate() {
            let x = layout.boxes[index].0 + BOX_WIDTH * (slot + 1) / slots;
            if is_start {
                ends[edge].0 = x;
            } else {
                ends[edge].1 = x;
            }
        }
    }
    ends
}

/// A short sample of an edge kind's line, drawn beside its name in the legend.
fn sample(kind: EdgeKind) -> Markup {
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="sample" width="36" height="10" viewBox="0 0 36 10" aria-hidden="true" {
            line class={ "edge " (kind.class()) } x1="1" y1="5" x2="35" y2="5" {}
        }
    }
}

/// The model as an SVG drawing, with its legend.
pub(super) fn draw(model: &Model) -> Markup {
    let all_edges = edges(model);
    let layout = Layout::new(model, &all_edges);
    let (loops, between): (Vec<_>, Vec<_>) = all_edges.iter().copied().partition(|(from, to, _)| from == to);
    let ends = anchors(&layout, &between);
    let name = |index: usize| model.types.get(index).map_or("", |type_def| type_def.name.as_str());
    let (width, height) = (layout.width, layout.height);
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="graph" role="img" aria-label="Types and relations of the model"
            width=(width) height=(height) viewBox={ "0 0 " (width) " " (height) } {
            defs {
                marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z" {}
                }
            }
            @for ((from, to, kind), (start_x, end_x)) in between.iter().zip(&ends) {
                path class={ "edge " (kind.class()) } marker-end="url(#arrow)"
                    d=(layout.curve(*from, *to, *start_x, *end_x)) {
                    title { (name(*from)) " → " (name(*to)) " (" (kind.class()) ")" }
                }
            }
            @for (index, _, kind) in &loops {
                @let (x, y, _) = layout.boxes[*index];
                path class={ "edge " (kind.class()) } marker-end="url(#arrow)"
                    d={ "M " (x + BOX_WIDTH) " " (y + 8) " c 24 -10 24 30 0 22" } {
                    title { (name(*index)) " → " (name(*index)) " (" (kind.class()) ")" }
                }
            }
            @for (index, type_def) in model.types.iter().enumerate() {
                @let (x, y, box_height) = layout.boxes[index];
                g class="type" {
                    rect x=(x) y=(y) width=(BOX_WIDTH) height=(box_height) rx="4" {}
                    text x=(x + 8) y=(y + 17) class="type-name" { (type_def.name) }
                    @for (line, relation) in type_def.relations.iter().enumerate() {
                        text x=(x + 8) y=(y + HEADER + 12 + line * LINE) class="relation" { (relation.name) }
                    }
                }
            }
        }
        p.legend {
            "Edges run from a subject type to the type that admits it: "
            span { (sample(EdgeKind::Direct)) " direct" } " "
            span { (sample(EdgeKind::Userset)) " userset (" code { "[team#member]" } ")" } " "
            span { (sample(EdgeKind::Tupleset)) " parent of an arrow (" code { "viewer from parent" } ")" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = "model\n  schema 1.1\ntype user\n  relations\n    define delegate: [agent]\n\
        type agent\n  relations\n    define owner: [user]\ntype team\n  relations\n    define member: [user, team#member]\n\
        type folder\n  relations\n    define parent: [folder]\n    define viewer: [team#member] or viewer from parent\n\
        type document\n  relations\n    define parent: [folder]\n    define viewer: [user] or viewer from parent\n";

    fn drawing() -> String {
        let model = Model::parse_dsl(MODEL).map_err(|errors| format!("{errors:?}")).unwrap();
        draw(&model).into_string()
    }

    #[test]
    fn every_box_is_closed_before_its_labels() {
        let svg = drawing();
        let rects: Vec<&str> = svg.split("<rect").skip(1).collect();
        assert_eq!(rects.len(), 5, "{svg}");
        for rest in rects {
            let after_open = &rest[rest.find('>').unwrap() + 1..];
            assert!(after_open.starts_with("</rect>"), "a rect holds something: {rest}");
        }
        for label in ["user", "agent", "team", "folder", "document", "delegate", "owner", "member", "parent", "viewer"]
        {
            assert!(svg.contains(&format!("\">{label}</text>")), "no label {label}: {svg}");
        }
    }

    #[test]
    fn types_sit_below_the_types_they_admit() {
        let model = Model::parse_dsl(MODEL).map_err(|errors| format!("{errors:?}")).unwrap();
        let layout = Layout::new(&model, &edges(&model));
        // user, then agent (admits user; the cycle back is broken), team, folder, document.
        let tops: Vec<usize> = layout.boxes.iter().map(|&(_, top, _)| top).collect();
        assert!(tops[0] < tops[1] && tops[1] == tops[2] && tops[2] < tops[3] && tops[3] < tops[4], "{tops:?}");
        assert!(layout.width <= 1200, "{}", layout.width);
    }
}
