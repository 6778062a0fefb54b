//! A small XML tree for SAML messages, read with quick-xml.
//!
//! It keeps what the XML-security rules need and the common XML libraries
//! hide: the prefix each element and attribute was written with, the
//! namespace declarations of each element (exclusive canonicalisation
//! renders them), comments as nodes (so a comment inside a value is seen),
//! and every element's `ID` (so a reference names one element only).
//!
//! Refused while reading: a document type declaration (no DTD, hence no
//! entity expansion), an entity other than the five predefined ones, a
//! document over [`MAX_DOCUMENT`] bytes, nesting deeper than [`MAX_DEPTH`],
//! and anything quick-xml finds ill-formed.

use quick_xml::escape::unescape;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use crate::{Error, Result};

/// The largest message accepted, in bytes of XML: a signed and encrypted
/// assertion with many attributes stays well under it.
pub const MAX_DOCUMENT: usize = 256 * 1024;
/// The deepest nesting accepted (SAML messages need about 10).
pub const MAX_DEPTH: usize = 48;

/// The namespace of the `xml:` prefix, bound without a declaration.
pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// An index into [`Document::elements`].
pub type ElementId = usize;

/// A parsed document: its elements in document order, the root first.
#[derive(Debug, Clone)]
pub struct Document {
    elements: Vec<Element>,
}

/// One element with its own declarations, attributes and children.
#[derive(Debug, Clone)]
pub struct Element {
    /// The prefix the element was written with (`None`: the default namespace).
    pub prefix: Option<String>,
    pub local: String,
    /// The namespace the element is in (`None`: no namespace).
    pub ns: Option<String>,
    /// The declarations written on this element: prefix (`None` for
    /// `xmlns=`) and URI (empty for an undeclaration).
    pub ns_decls: Vec<(Option<String>, String)>,
    pub attrs: Vec<Attr>,
    pub children: Vec<Node>,
    pub parent: Option<ElementId>,
}

/// An attribute (namespace declarations are not attributes here).
#[derive(Debug, Clone)]
pub struct Attr {
    pub prefix: Option<String>,
    pub local: String,
    pub ns: Option<String>,
    pub value: String,
}

/// A child of an element.
#[derive(Debug, Clone)]
pub enum Node {
    Element(ElementId),
    Text(String),
    Comment,
    Pi(String),
}

impl Document {
    /// Reads a document. See the module documentation for what is refused.
    pub fn parse(xml: &str) -> Result<Document> {
        if xml.len() > MAX_DOCUMENT {
            return Err(Error::TooLarge);
        }
        Builder::default().run(xml)
    }

    /// The document element.
    pub fn root(&self) -> ElementId {
        0
    }

    #[allow(clippy::indexing_slicing, reason = "ids are only handed out by this document")]
    pub fn element(&self, id: ElementId) -> &Element {
        &self.elements[id]
    }

    /// Every element carrying `ID="value"` (SAML's identifier attribute).
    pub fn elements_with_id(&self, value: &str) -> Vec<ElementId> {
        (0..self.elements.len()).filter(|&e| self.attr(e, "ID") == Some(value)).collect()
    }

    /// The value of the attribute `name` in no namespace.
    pub fn attr(&self, e: ElementId, name: &str) -> Option<&str> {
        self.element(e).attrs.iter().find(|a| a.ns.is_none() && a.local == name).map(|a| a.value.as_str())
    }

    /// Whether the element is `{ns}local`.
    pub fn is(&self, e: ElementId, ns: &str, local: &str) -> bool {
        let el = self.element(e);
        el.local == local && el.ns.as_deref() == Some(ns)
    }

    /// The element children of `e`.
    pub fn children(&self, e: ElementId) -> impl Iterator<Item = ElementId> + '_ {
        self.element(e).children.iter().filter_map(|c| match c {
            Node::Element(id) => Some(*id),
            _ => None,
        })
    }

    /// The element children of `e` named `{ns}local`.
    pub fn children_named<'a>(
        &'a self,
        e: ElementId,
        ns: &'a str,
        local: &'a str,
    ) -> impl Iterator<Item = ElementId> + 'a {
        self.children(e).filter(move |&c| self.is(c, ns, local))
    }

    /// The only child `{ns}local` of `e`, if there is exactly one.
    pub fn only_child(&self, e: ElementId, ns: &str, local: &str) -> Option<ElementId> {
        let mut it = self.children_named(e, ns, local);
        match (it.next(), it.next()) {
            (Some(c), None) => Some(c),
            _ => None,
        }
    }

    /// Every element `{ns}local` in the subtree of `e`, `e` included.
    pub fn descendants_named(&self, e: ElementId, ns: &str, local: &str) -> Vec<ElementId> {
        let mut found = Vec::new();
        let mut stack = vec![e];
        while let Some(x) = stack.pop() {
            if self.is(x, ns, local) {
                found.push(x);
            }
            stack.extend(self.children(x));
        }
        found
    }

    /// The text of a value element: its text children joined. A comment or
    /// a child element among them is refused: a signature made without
    /// comments still covers `a<!---->b` as `ab`, and a reader that stops at
    /// the comment would see `a` (the comment-truncation attack).
    pub fn text(&self, e: ElementId) -> Result<String> {
        let mut out = String::new();
        for child in &self.element(e).children {
            match child {
                Node::Text(t) => out.push_str(t),
                Node::Pi(_) => {}
                Node::Comment | Node::Element(_) => return Err(Error::MixedValue),
            }
        }
        Ok(out)
    }

    /// The namespace bound to `prefix` where `e` is (`None`: the default one).
    pub fn lookup_ns(&self, e: ElementId, prefix: Option<&str>) -> Option<&str> {
        lookup(&self.elements, e, prefix)
    }

    /// The namespaces in scope at `e`, innermost first, one per prefix.
    pub fn in_scope(&self, e: ElementId) -> Vec<(Option<String>, String)> {
        let mut seen: Vec<(Option<String>, String)> = Vec::new();
        let mut cur = Some(e);
        while let Some(x) = cur {
            let el = self.element(x);
            for (p, uri) in &el.ns_decls {
                if !seen.iter().any(|(q, _)| q == p) {
                    seen.push((p.clone(), uri.clone()));
                }
            }
            cur = el.parent;
        }
        seen.retain(|(_, uri)| !uri.is_empty());
        seen
    }
}

fn lookup<'a>(elements: &'a [Element], e: ElementId, prefix: Option<&str>) -> Option<&'a str> {
    if prefix == Some("xml") {
        return Some(XML_NS);
    }
    let mut cur = Some(e);
    while let Some(el) = cur.and_then(|x| elements.get(x)) {
        if let Some((_, uri)) = el.ns_decls.iter().find(|(p, _)| p.as_deref() == prefix) {
            return (!uri.is_empty()).then_some(uri.as_str());
        }
        cur = el.parent;
    }
    None
}

#[derive(Default)]
struct Builder {
    elements: Vec<Element>,
    open: Vec<ElementId>,
    done: bool,
}

impl Builder {
    fn run(mut self, xml: &str) -> Result<Document> {
        let mut reader = Reader::from_str(xml);
        reader.config_mut().trim_text(false);
        reader.config_mut().check_end_names = true;
        reader.config_mut().expand_empty_elements = false;
        loop {
            match reader.read_event().map_err(|e| Error::Malformed(e.to_string()))? {
                Event::DocType(_) => return Err(Error::Dtd),
                Event::Start(start) => self.start(&start, false)?,
                Event::Empty(start) => self.start(&start, true)?,
                Event::End(_) => {
                    self.open.pop();
                    self.done = self.open.is_empty();
                }
                Event::Text(text) => {
                    let raw = std::str::from_utf8(text.as_ref()).map_err(|e| Error::Malformed(e.to_string()))?;
                    let raw = raw.replace("\r\n", "\n").replace('\r', "\n");
                    let value = unescape(&raw).map_err(|e| Error::Malformed(e.to_string()))?;
                    self.text(&value)?;
                }
                Event::CData(data) => {
                    let value = std::str::from_utf8(data.as_ref()).map_err(|e| Error::Malformed(e.to_string()))?;
                    self.text(&value.replace("\r\n", "\n").replace('\r', "\n"))?;
                }
                Event::Comment(_) => self.push_child(Node::Comment),
                Event::PI(pi) => {
                    let raw = String::from_utf8_lossy(pi.as_ref()).into_owned();
                    self.push_child(Node::Pi(raw));
                }
                Event::Decl(_) => {}
                Event::Eof => break,
            }
        }
        if !self.done || !self.open.is_empty() {
            return Err(Error::Malformed("no complete document element".into()));
        }
        Ok(Document { elements: self.elements })
    }

    fn push_child(&mut self, node: Node) {
        if let Some(&parent) = self.open.last()
            && let Some(el) = self.elements.get_mut(parent)
        {
            el.children.push(node);
        }
    }

    /// Text outside the document element may only be white space.
    fn text(&mut self, value: &str) -> Result<()> {
        match self.open.last() {
            Some(_) => {
                if let Some(Node::Text(prev)) =
                    self.open.last().and_then(|&p| self.elements.get_mut(p)).and_then(|el| el.children.last_mut())
                {
                    prev.push_str(value);
                } else {
                    self.push_child(Node::Text(value.to_owned()));
                }
                Ok(())
            }
            None if value.trim().is_empty() => Ok(()),
            None => Err(Error::Malformed("text outside the document element".into())),
        }
    }

    fn start(&mut self, start: &BytesStart<'_>, empty: bool) -> Result<()> {
        if self.done {
            return Err(Error::Malformed("a second document element".into()));
        }
        if self.open.len() >= MAX_DEPTH {
            return Err(Error::TooDeep);
        }
        let id = self.elements.len();
        let parent = self.open.last().copied();
        let (prefix, local) = split_name(start.name().as_ref())?;
        let mut ns_decls = Vec::new();
        let mut raw_attrs = Vec::new();
        for attr in start.attributes() {
            let attr = attr.map_err(|e| Error::Malformed(e.to_string()))?;
            let (aprefix, alocal) = split_name(attr.key.as_ref())?;
            let raw = std::str::from_utf8(&attr.value).map_err(|e| Error::Malformed(e.to_string()))?;
            // Attribute-value normalisation: literal white space becomes a space.
            let raw = raw.replace("\r\n", " ").replace(['\t', '\n', '\r'], " ");
            let value = unescape(&raw).map_err(|e| Error::Malformed(e.to_string()))?.into_owned();
            match (aprefix.as_deref(), alocal.as_str()) {
                (None, "xmlns") => ns_decls.push((None, value)),
                (Some("xmlns"), p) => ns_decls.push((Some(p.to_owned()), value)),
                _ => raw_attrs.push((aprefix, alocal, value)),
            }
        }
        self.elements.push(Element {
            prefix: prefix.clone(),
            local,
            ns: None,
            ns_decls,
            attrs: Vec::new(),
            children: Vec::new(),
            parent,
        });
        let ns = lookup(&self.elements, id, prefix.as_deref()).map(str::to_owned);
        if prefix.is_some() && ns.is_none() {
            return Err(Error::Malformed(format!("undeclared prefix {}", prefix.unwrap_or_default())));
        }
        let mut attrs = Vec::with_capacity(raw_attrs.len());
        for (aprefix, alocal, value) in raw_attrs {
            let ans = match &aprefix {
                None => None,
                Some(p) => Some(
                    lookup(&self.elements, id, Some(p))
                        .ok_or_else(|| Error::Malformed(format!("undeclared prefix {p}")))?
                        .to_owned(),
                ),
            };
            if attrs.iter().any(|a: &Attr| a.local == alocal && a.ns == ans) {
                return Err(Error::Malformed(format!("attribute {alocal} repeated")));
            }
            attrs.push(Attr { prefix: aprefix, local: alocal, ns: ans, value });
        }
        if let Some(el) = self.elements.get_mut(id) {
            el.ns = ns;
            el.attrs = attrs;
        }
        self.push_child(Node::Element(id));
        if empty {
            self.done = self.open.is_empty();
        } else {
            self.open.push(id);
        }
        Ok(())
    }
}

fn split_name(raw: &[u8]) -> Result<(Option<String>, String)> {
    let name = std::str::from_utf8(raw).map_err(|e| Error::Malformed(e.to_string()))?;
    match name.split_once(':') {
        Some((p, l)) if !p.is_empty() && !l.is_empty() && !l.contains(':') => Ok((Some(p.to_owned()), l.to_owned())),
        Some(_) => Err(Error::Malformed(format!("bad name {name}"))),
        None => Ok((None, name.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_prefixes_and_ids_are_kept() {
        let doc = Document::parse(
            r#"<p:a xmlns:p="urn:p" ID="x"><b xmlns="urn:d" q:c="1" xmlns:q="urn:q">t&amp;u</b><p:b ID="y"/></p:a>"#,
        )
        .unwrap();
        let root = doc.root();
        assert!(doc.is(root, "urn:p", "a"));
        let b = doc.children(root).next().unwrap();
        assert!(doc.is(b, "urn:d", "b"));
        assert_eq!(doc.element(b).attrs[0].ns.as_deref(), Some("urn:q"));
        assert_eq!(doc.text(b).unwrap(), "t&u");
        assert_eq!(doc.elements_with_id("y").len(), 1);
    }

    #[test]
    fn a_doctype_is_refused_before_any_entity_is_read() {
        let xml = r#"<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "xxxxxxxx">]><a>&e;</a>"#;
        assert!(matches!(Document::parse(xml), Err(Error::Dtd)));
    }

    #[test]
    fn an_undeclared_entity_is_refused() {
        assert!(matches!(Document::parse("<a>&e;</a>"), Err(Error::Malformed(_))));
    }

    #[test]
    fn a_comment_inside_a_value_is_refused() {
        let doc = Document::parse("<a>admin@ent.fr<!---->.evil.example</a>").unwrap();
        assert!(matches!(doc.text(doc.root()), Err(Error::MixedValue)));
    }

    #[test]
    fn size_depth_and_shape_are_bounded() {
        assert!(matches!(Document::parse(&"x".repeat(MAX_DOCUMENT + 1)), Err(Error::TooLarge)));
        let deep = format!("{}{}", "<a>".repeat(MAX_DEPTH + 1), "</a>".repeat(MAX_DEPTH + 1));
        assert!(matches!(Document::parse(&deep), Err(Error::TooDeep)));
        assert!(Document::parse("<a/><b/>").is_err());
        assert!(Document::parse("<a>").is_err());
        assert!(Document::parse("<a></b>").is_err());
        assert!(Document::parse("<p:a/>").is_err());
        assert!(Document::parse("").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_input_is_read_or_refused_without_panic(s in "\\PC{0,200}") {
            let _ = Document::parse(&s);
        }

        #[test]
        fn xml_like_input_is_read_or_refused_without_panic(s in "(<[a-z:]{1,3}( [a-z:]{1,3}=\"[^\"<]{0,4}\")?/?>|</[a-z:]{1,3}>|[a-z&;#]{0,3}|<!--x-->|<!DOCTYPE a>){0,12}") {
            let _ = Document::parse(&s);
        }
    }
}
