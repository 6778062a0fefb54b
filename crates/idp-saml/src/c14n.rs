//! Exclusive XML canonicalisation without comments
//! (`http://www.w3.org/2001/10/xml-exc-c14n#`), for one element's subtree,
//! optionally leaving out one descendant (the enveloped signature).
//!
//! Written here rather than taken from a crate: the Rust crates that offer
//! it either canonicalise a whole document from text (no subtree, no
//! exclusion) or sit on libxml2. The subset SAML needs is small: an element
//! subtree, no comments, the `InclusiveNamespaces PrefixList` parameter.
//!
//! Rules applied (exc-c14n §3 over c14n 1.0 §2.3): an element renders the
//! namespace declarations it visibly uses (its own prefix, its attributes'
//! prefixes, plus the inclusive prefixes in scope) unless an output ancestor
//! already rendered the same binding; declarations sorted by prefix,
//! attributes by namespace URI then local name; empty elements as start and
//! end tags; text and attribute values escaped as the specification says;
//! comments dropped; `xml:` attributes of ancestors not imported.

use std::collections::BTreeMap;

use crate::xml::{Document, ElementId, Node};

/// Canonicalises the subtree of `e`, leaving out the subtree of `omit`.
pub fn canonicalize(doc: &Document, e: ElementId, omit: Option<ElementId>, inclusive: &[String]) -> String {
    let mut out = String::new();
    let rendered = BTreeMap::new();
    element(doc, e, omit, inclusive, &rendered, &mut out);
    out
}

/// `rendered`: prefix (empty for the default namespace) to URI, as the
/// nearest output ancestors declared them.
fn element(
    doc: &Document,
    e: ElementId,
    omit: Option<ElementId>,
    inclusive: &[String],
    rendered: &BTreeMap<String, String>,
    out: &mut String,
) {
    let el = doc.element(e);
    let mut used: Vec<String> = vec![el.prefix.clone().unwrap_or_default()];
    used.extend(el.attrs.iter().filter_map(|a| a.prefix.clone()).filter(|p| p != "xml"));
    for p in inclusive {
        let p = if p == "#default" { String::new() } else { p.clone() };
        let bound = doc.lookup_ns(e, (!p.is_empty()).then_some(p.as_str())).is_some();
        if bound {
            used.push(p);
        }
    }
    used.sort();
    used.dedup();

    let mut mine = rendered.clone();
    let mut decls = String::new();
    for p in &used {
        let uri = doc.lookup_ns(e, (!p.is_empty()).then_some(p.as_str())).unwrap_or("");
        let before = rendered.get(p).map(String::as_str).unwrap_or("");
        // An unused empty default namespace is never declared; a changed
        // binding (including back to none) is.
        if uri == before {
            continue;
        }
        match p.is_empty() {
            true => decls.push_str(" xmlns=\""),
            false => {
                decls.push_str(" xmlns:");
                decls.push_str(p);
                decls.push_str("=\"");
            }
        }
        escape_attr(uri, &mut decls);
        decls.push('"');
        mine.insert(p.clone(), uri.to_owned());
    }

    let name = qualified(el.prefix.as_deref(), &el.local);
    out.push('<');
    out.push_str(&name);
    out.push_str(&decls);
    let mut attrs: Vec<_> = el.attrs.iter().collect();
    attrs.sort_by(|a, b| (a.ns.as_deref().unwrap_or(""), &a.local).cmp(&(b.ns.as_deref().unwrap_or(""), &b.local)));
    for a in attrs {
        out.push(' ');
        out.push_str(&qualified(a.prefix.as_deref(), &a.local));
        out.push_str("=\"");
        escape_attr(&a.value, out);
        out.push('"');
    }
    out.push('>');
    for child in &el.children {
        match child {
            Node::Element(c) if Some(*c) == omit => {}
            Node::Element(c) => element(doc, *c, omit, inclusive, &mine, out),
            Node::Text(t) => escape_text(t, out),
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

fn qualified(prefix: Option<&str>, local: &str) -> String {
    match prefix {
        Some(p) => format!("{p}:{local}"),
        None => local.to_owned(),
    }
}

fn escape_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

fn escape_attr(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c14n(xml: &str, path: &[usize]) -> String {
        let doc = Document::parse(xml).unwrap();
        let mut e = doc.root();
        for &i in path {
            e = doc.children(e).nth(i).unwrap();
        }
        canonicalize(&doc, e, None, &[])
    }

    #[test]
    fn only_visibly_used_namespaces_are_rendered() {
        let xml =
            r#"<a:r xmlns:a="urn:a" xmlns:b="urn:b" xmlns:c="urn:c"><b:x c:k="v" z="1" a:y="2"><a:y/></b:x></a:r>"#;
        assert_eq!(
            c14n(xml, &[0]),
            r#"<b:x xmlns:a="urn:a" xmlns:b="urn:b" xmlns:c="urn:c" z="1" a:y="2" c:k="v"><a:y></a:y></b:x>"#
        );
    }

    #[test]
    fn default_namespace_and_undeclaration() {
        let xml = r#"<r xmlns="urn:d"><x><y xmlns=""/></x></r>"#;
        assert_eq!(c14n(xml, &[0]), r#"<x xmlns="urn:d"><y xmlns=""></y></x>"#);
        assert_eq!(c14n("<r><x/></r>", &[0]), "<x></x>");
    }

    #[test]
    fn text_and_attributes_are_escaped_and_comments_dropped() {
        let xml = "<r a=\"&lt;&quot;&#9;\">1 &lt; 2 &amp;&gt; 3<!-- c --><![CDATA[<&>]]></r>";
        assert_eq!(c14n(xml, &[]), "<r a=\"&lt;&quot;&#x9;\">1 &lt; 2 &amp;&gt; 3&lt;&amp;&gt;</r>");
    }

    #[test]
    fn inclusive_prefixes_are_rendered_when_in_scope() {
        let xml = r#"<r xmlns:xs="urn:xs" xmlns:q="urn:q"><x/></r>"#;
        let doc = Document::parse(xml).unwrap();
        let x = doc.children(doc.root()).next().unwrap();
        assert_eq!(canonicalize(&doc, x, None, &["xs".into(), "nope".into()]), r#"<x xmlns:xs="urn:xs"></x>"#);
    }

    #[test]
    fn the_omitted_subtree_is_left_out() {
        let doc = Document::parse("<r><s>1</s><t/></r>").unwrap();
        let s = doc.children(doc.root()).next().unwrap();
        assert_eq!(canonicalize(&doc, doc.root(), Some(s), &[]), "<r><t></t></r>");
    }

    proptest::proptest! {
        /// Canonical output is itself a document whose canonical form is unchanged.
        #[test]
        fn canonical_form_is_a_fixed_point(
            body in "(<[ab]( k=\"[a-z&;<>\t\n]{0,3}\")?>[a-z<>&;]{0,3}</[ab]>|[a-z&;> \r\n\t]{0,4}|<!--x-->|<b xmlns=\"\"/>){0,6}"
        ) {
            let xml = format!("<r xmlns=\"urn:r\">{body}</r>");
            if let Ok(doc) = Document::parse(&xml) {
                let once = canonicalize(&doc, doc.root(), None, &[]);
                let again = Document::parse(&once).unwrap();
                proptest::prop_assert_eq!(canonicalize(&again, again.root(), None, &[]), once);
            }
        }
    }
}
