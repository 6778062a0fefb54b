//! Writing a parsed document back out (after inserting a signature).

use crate::xml::{Document, ElementId, Node};

/// The document's text with `fragment` inserted as a child of `parent`,
/// right after its child `after` (first when `None`). Comments are not
/// kept by the reader and are not written.
pub fn serialize_with_insert(doc: &Document, parent: ElementId, after: Option<ElementId>, fragment: &str) -> String {
    let mut out = String::new();
    write(doc, doc.root(), &Insert { parent, after, fragment }, &mut out);
    out
}

struct Insert<'a> {
    parent: ElementId,
    after: Option<ElementId>,
    fragment: &'a str,
}

fn write(doc: &Document, e: ElementId, insert: &Insert<'_>, out: &mut String) {
    let el = doc.element(e);
    let name = match &el.prefix {
        Some(p) => format!("{p}:{}", el.local),
        None => el.local.clone(),
    };
    out.push('<');
    out.push_str(&name);
    for (p, uri) in &el.ns_decls {
        match p {
            Some(p) => out.push_str(&format!(" xmlns:{p}=\"{}\"", crate::escape(uri))),
            None => out.push_str(&format!(" xmlns=\"{}\"", crate::escape(uri))),
        }
    }
    for a in &el.attrs {
        let q = match &a.prefix {
            Some(p) => format!("{p}:{}", a.local),
            None => a.local.clone(),
        };
        out.push_str(&format!(" {q}=\"{}\"", crate::escape(&a.value)));
    }
    out.push('>');
    if e == insert.parent && insert.after.is_none() {
        out.push_str(insert.fragment);
    }
    for child in &el.children {
        match child {
            Node::Element(c) => {
                write(doc, *c, insert, out);
                if e == insert.parent && insert.after == Some(*c) {
                    out.push_str(insert.fragment);
                }
            }
            Node::Text(t) => out.push_str(&crate::escape(t)),
            Node::Pi(raw) => {
                out.push_str("<?");
                out.push_str(raw);
                out.push_str("?>");
            }
            Node::Comment => {}
        }
    }
    out.push_str("</");
    out.push_str(&name);
    out.push('>');
}
