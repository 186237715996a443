//! A small, bounded, namespace-aware XML tree for SAML messages, and exclusive XML
//! canonicalization (`http://www.w3.org/2001/10/xml-exc-c14n#`, without comments) of a subtree.
//!
//! Only what SAML needs: elements, attributes, namespace declarations, text and processing
//! instructions (which canonicalization keeps; they are not part of an element's text).
//! Comments are dropped (exclusive c14n without comments drops them too); a DOCTYPE is
//! rejected outright (no entity expansion, no external references).
//!
//! The input is hostile (an unauthenticated POST), so the cost of a document is bounded:
//! - hard [`Limits`] on nesting depth, element count, attributes and namespace declarations per
//!   element, namespace declarations per document and total text, checked while parsing;
//! - the tree lives in an arena ([`Document`]): elements are indices into one `Vec`, so
//!   dropping a document is flat, and nothing here recurses (parsing, lookups, canonicalization
//!   and descendant search all use explicit stacks);
//! - namespace scopes are a shared chain (one arena entry per declaration, pointing to the
//!   enclosing scope), never a map copied per element.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::borrow::Cow;
use std::sync::Arc;

/// The XML namespace, bound to `xml` implicitly.
pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Hard limits for one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest element nesting (the root is depth 1).
    pub max_depth: usize,
    /// Elements in the whole document.
    pub max_elements: usize,
    /// Attributes (without namespace declarations) on one element.
    pub max_attributes: usize,
    /// Namespace declarations on one element.
    pub max_ns_per_element: usize,
    /// Namespace declarations in the whole document.
    pub max_ns_per_document: usize,
    /// Bytes of character data and attribute values in the whole document.
    pub max_text_bytes: usize,
}

impl Limits {
    /// For SAML protocol messages. A real response from BundID or a Länder-Servicekonto has
    /// a depth below 12, fewer than 100 elements and a handful of namespace declarations.
    pub const SAML: Limits = Limits {
        max_depth: 64,
        max_elements: 4096,
        max_attributes: 64,
        max_ns_per_element: 32,
        max_ns_per_document: 256,
        max_text_bytes: 512 * 1024,
    };

    /// For IdP metadata, fetched from a configured URL (federation aggregates are large).
    pub const METADATA: Limits = Limits {
        max_depth: 64,
        max_elements: 500_000,
        max_attributes: 64,
        max_ns_per_element: 32,
        max_ns_per_document: 200_000,
        max_text_bytes: 64 * 1024 * 1024,
    };
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XmlError {
    #[error("malformed XML: {0}")]
    Syntax(String),
    #[error("XML with a DOCTYPE is not accepted")]
    Doctype,
    #[error("undeclared namespace prefix {0:?}")]
    UndeclaredPrefix(String),
    #[error("the document has no root element")]
    Empty,
    #[error("the document exceeds the limit of {limit} {what}")]
    Limit { what: &'static str, limit: usize },
}

/// An attribute (never a namespace declaration).
#[derive(Debug, Clone)]
pub struct Attr {
    pub prefix: Option<String>,
    pub local: String,
    /// Namespace URI (only for prefixed attributes).
    pub ns: Option<Arc<str>>,
    pub value: String,
}

#[derive(Debug)]
enum Child {
    Element(u32),
    Text(String),
    /// A processing instruction: target and data.
    Pi(String, String),
}

#[derive(Debug)]
struct ElementData {
    prefix: Option<String>,
    local: String,
    ns: Option<Arc<str>>,
    attrs: Vec<Attr>,
    children: Vec<Child>,
    /// Innermost namespace declaration in scope (index into `Document::scopes`).
    scope: u32,
}

/// One namespace declaration; `parent` is the declaration in scope before it (the chain ends
/// at the implicit `xml` binding, index 0, whose parent is itself).
#[derive(Debug)]
struct Scope {
    prefix: String,
    /// `None` undeclares the default namespace (`xmlns=""`).
    uri: Option<Arc<str>>,
    parent: u32,
}

/// A parsed document: an arena of elements and namespace declarations.
#[derive(Debug)]
pub struct Document {
    elements: Vec<ElementData>,
    scopes: Vec<Scope>,
    root: u32,
}

impl Document {
    /// The root element.
    pub fn root(&self) -> Element<'_> {
        Element { doc: self, id: self.root }
    }

    /// Number of elements.
    pub fn element_count(&self) -> usize {
        self.elements.len()
    }
}

/// A reference to an element of a [`Document`].
#[derive(Debug, Clone, Copy)]
pub struct Element<'a> {
    doc: &'a Document,
    id: u32,
}

impl PartialEq for Element<'_> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.doc, other.doc) && self.id == other.id
    }
}

impl Eq for Element<'_> {}

impl<'a> Element<'a> {
    fn data(&self) -> &'a ElementData {
        &self.doc.elements[self.id as usize]
    }

    /// Local name.
    pub fn local(&self) -> &'a str {
        &self.data().local
    }

    /// Prefix of the element name, if any.
    pub fn prefix(&self) -> Option<&'a str> {
        self.data().prefix.as_deref()
    }

    /// Namespace URI of the element, if any.
    pub fn ns(&self) -> Option<&'a str> {
        self.data().ns.as_deref()
    }

    /// Whether this element is `{ns}local`.
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.local() == local && self.ns() == Some(ns)
    }

    /// Attributes, in document order.
    pub fn attrs(&self) -> &'a [Attr] {
        &self.data().attrs
    }

    /// The value of an unqualified attribute.
    pub fn attr(&self, local: &str) -> Option<&'a str> {
        self.attrs().iter().find(|a| a.ns.is_none() && a.local == local).map(|a| a.value.as_str())
    }

    /// Child elements.
    pub fn elements(&self) -> impl Iterator<Item = Element<'a>> + 'a {
        let doc = self.doc;
        self.data().children.iter().filter_map(move |n| match n {
            Child::Element(id) => Some(Element { doc, id: *id }),
            Child::Text(_) | Child::Pi(..) => None,
        })
    }

    /// Child elements named `{ns}local`.
    pub fn children_named(&self, ns: &'a str, local: &'a str) -> impl Iterator<Item = Element<'a>> + 'a {
        self.elements().filter(move |e| e.is(ns, local))
    }

    /// The first child element named `{ns}local`.
    pub fn child(&self, ns: &str, local: &str) -> Option<Element<'a>> {
        self.elements().find(|e| e.is(ns, local))
    }

    /// All descendants (document order, self excluded) named `{ns}local`.
    pub fn descendants(&self, ns: &str, local: &str) -> Vec<Element<'a>> {
        let mut out = Vec::new();
        let mut stack: Vec<Element<'a>> = self.elements().collect();
        stack.reverse();
        while let Some(e) = stack.pop() {
            if e.is(ns, local) {
                out.push(e);
            }
            let len = stack.len();
            stack.extend(e.elements());
            stack[len..].reverse();
        }
        out
    }

    /// The first element (self included, document order) whose `ID` attribute is `id`.
    pub fn find_by_id(&self, id: &str) -> Option<Element<'a>> {
        let mut stack = vec![*self];
        while let Some(e) = stack.pop() {
            if e.attr("ID") == Some(id) {
                return Some(e);
            }
            let len = stack.len();
            stack.extend(e.elements());
            stack[len..].reverse();
        }
        None
    }

    /// Concatenated text content of the direct text children, trimmed.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for n in &self.data().children {
            if let Child::Text(t) = n {
                s.push_str(t);
            }
        }
        s.trim().to_string()
    }

    /// The namespace URI bound to `prefix` (`""`: the default namespace) here.
    pub fn lookup_prefix(&self, prefix: &str) -> Option<&'a str> {
        lookup(&self.doc.scopes, self.data().scope, prefix).and_then(|u| u.as_deref())
    }

    /// Every namespace binding in scope here (prefix → URI, `""` for the default namespace),
    /// innermost first, each prefix once; `xml` is left out (it is always bound).
    pub fn in_scope_namespaces(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        let mut at = self.data().scope;
        while at != 0 {
            let s = &self.doc.scopes[at as usize];
            if !seen.contains(&s.prefix.as_str()) {
                seen.push(&s.prefix);
                if let Some(u) = &s.uri {
                    out.push((s.prefix.clone(), u.to_string()));
                }
            }
            at = s.parent;
        }
        out
    }

    fn qname(&self) -> String {
        match self.prefix() {
            Some(p) => format!("{p}:{}", self.local()),
            None => self.local().to_string(),
        }
    }
}

/// The declaration of `prefix` visible from scope `at`: `Some(None)` when it is undeclared
/// (`xmlns=""`), `None` when it was never declared.
fn lookup<'s>(scopes: &'s [Scope], mut at: u32, prefix: &str) -> Option<&'s Option<Arc<str>>> {
    loop {
        let s = &scopes[at as usize];
        if s.prefix == prefix {
            return Some(&s.uri);
        }
        if at == 0 {
            return None;
        }
        at = s.parent;
    }
}

/// Parse a document into its root element.
pub fn parse(text: &str, limits: &Limits) -> Result<Document, XmlError> {
    parse_in_scope(text, &[], limits)
}

/// Parse a fragment (e.g. a decrypted element) with the namespace bindings in scope where it
/// belongs (as [`Element::in_scope_namespaces`] returns them).
pub fn parse_in_scope(text: &str, bindings: &[(String, String)], limits: &Limits) -> Result<Document, XmlError> {
    Parser::new(bindings, limits).run(text, false)
}

/// Read only the root element's start tag (its name, namespace and attributes; no children),
/// without looking at the rest of the document: a constant-cost peek at a message.
pub fn parse_root_tag(text: &str, limits: &Limits) -> Result<Document, XmlError> {
    Parser::new(&[], limits).run(text, true)
}

struct Parser<'l> {
    limits: &'l Limits,
    elements: Vec<ElementData>,
    scopes: Vec<Scope>,
    /// Open elements (indices into `elements`).
    stack: Vec<u32>,
    root: Option<u32>,
    text_bytes: usize,
    declarations: usize,
    base_scope: u32,
}

impl<'l> Parser<'l> {
    fn new(bindings: &[(String, String)], limits: &'l Limits) -> Parser<'l> {
        let mut scopes = vec![Scope { prefix: "xml".into(), uri: Some(Arc::from(XML_NS)), parent: 0 }];
        // Innermost first: push in reverse so that the innermost ends up nearest.
        for (p, u) in bindings.iter().rev() {
            let parent = (scopes.len() - 1) as u32;
            scopes.push(Scope { prefix: p.clone(), uri: Some(Arc::from(u.as_str())), parent });
        }
        let base_scope = (scopes.len() - 1) as u32;
        Parser {
            limits,
            elements: Vec::new(),
            scopes,
            stack: Vec::new(),
            root: None,
            text_bytes: 0,
            declarations: 0,
            base_scope,
        }
    }

    fn run(mut self, text: &str, root_tag_only: bool) -> Result<Document, XmlError> {
        let mut reader = Reader::from_str(text);
        let config = reader.config_mut();
        config.trim_text(false);
        config.expand_empty_elements = true;
        config.check_end_names = true;
        loop {
            let event = reader.read_event().map_err(|e| XmlError::Syntax(e.to_string()))?;
            match event {
                Event::Start(start) => {
                    if self.root.is_some() {
                        return Err(XmlError::Syntax("content after the root element".into()));
                    }
                    self.start(&start)?;
                    if root_tag_only {
                        let root = self.stack[0];
                        return Ok(Document { elements: self.elements, scopes: self.scopes, root });
                    }
                }
                Event::End(_) => {
                    let done = self.stack.pop().ok_or_else(|| XmlError::Syntax("unbalanced end tag".into()))?;
                    if self.stack.is_empty() {
                        self.root = Some(done);
                    }
                }
                Event::Empty(_) => unreachable!("empty elements are expanded"),
                Event::Text(t) => {
                    let raw = String::from_utf8_lossy(t.as_ref());
                    let raw = if raw.contains('\r') {
                        Cow::Owned(raw.replace("\r\n", "\n").replace('\r', "\n"))
                    } else {
                        raw
                    };
                    let value = quick_xml::escape::unescape(&raw).map_err(|e| XmlError::Syntax(e.to_string()))?;
                    self.text(&value)?;
                }
                Event::GeneralRef(r) => {
                    // Character references and the five predefined entities; nothing else exists
                    // without a DTD.
                    let syntax = |e: String| XmlError::Syntax(e);
                    if let Some(c) = r.resolve_char_ref().map_err(|e| syntax(e.to_string()))? {
                        self.text(c.encode_utf8(&mut [0u8; 4]))?;
                    } else {
                        let name = String::from_utf8_lossy(r.as_ref());
                        let value = quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| syntax(format!("unknown entity &{name};")))?;
                        self.text(value)?;
                    }
                }
                Event::CData(c) => {
                    self.text(&String::from_utf8_lossy(c.as_ref()))?;
                }
                Event::DocType(_) => return Err(XmlError::Doctype),
                Event::PI(pi) => {
                    let target = String::from_utf8_lossy(pi.target()).into_owned();
                    let data = String::from_utf8_lossy(pi.content()).replace("\r\n", "\n").replace('\r', "\n");
                    self.pi(target, data.trim_start().to_string())?;
                }
                Event::Comment(_) | Event::Decl(_) => {}
                Event::Eof => break,
            }
        }
        if !self.stack.is_empty() {
            return Err(XmlError::Syntax("unclosed element at end of document".into()));
        }
        let root = self.root.ok_or(XmlError::Empty)?;
        Ok(Document { elements: self.elements, scopes: self.scopes, root })
    }

    fn count_text(&mut self, len: usize) -> Result<(), XmlError> {
        self.text_bytes += len;
        if self.text_bytes > self.limits.max_text_bytes {
            return Err(XmlError::Limit { what: "bytes of text", limit: self.limits.max_text_bytes });
        }
        Ok(())
    }

    fn text(&mut self, value: &str) -> Result<(), XmlError> {
        let Some(&open) = self.stack.last() else {
            if value.trim().is_empty() {
                return Ok(());
            }
            let place = if self.root.is_some() { "after" } else { "before" };
            return Err(XmlError::Syntax(format!("text {place} the root element")));
        };
        self.count_text(value.len())?;
        let children = &mut self.elements[open as usize].children;
        if let Some(Child::Text(prev)) = children.last_mut() {
            prev.push_str(value);
        } else {
            children.push(Child::Text(value.to_string()));
        }
        Ok(())
    }

    /// A processing instruction inside the root element is kept; outside it, dropped.
    fn pi(&mut self, target: String, data: String) -> Result<(), XmlError> {
        let Some(&open) = self.stack.last() else {
            return Ok(());
        };
        self.count_text(target.len() + data.len())?;
        self.elements[open as usize].children.push(Child::Pi(target, data));
        Ok(())
    }

    fn start(&mut self, start: &BytesStart<'_>) -> Result<(), XmlError> {
        let limits = self.limits;
        if self.stack.len() >= limits.max_depth {
            return Err(XmlError::Limit { what: "levels of element nesting", limit: limits.max_depth });
        }
        if self.elements.len() >= limits.max_elements {
            return Err(XmlError::Limit { what: "elements", limit: limits.max_elements });
        }
        let qname = String::from_utf8_lossy(start.name().as_ref()).into_owned();
        let mut scope = match self.stack.last() {
            Some(&parent) => self.elements[parent as usize].scope,
            None => self.base_scope,
        };
        let mut raw_attrs: Vec<(String, String)> = Vec::new();
        let mut declared = 0usize;
        for a in start.attributes() {
            let a = a.map_err(|e| XmlError::Syntax(e.to_string()))?;
            let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
            // Attribute-value normalization: literal whitespace characters become spaces.
            let raw = String::from_utf8_lossy(&a.value).replace(['\t', '\n', '\r'], " ");
            let value = quick_xml::escape::unescape(&raw).map_err(|e| XmlError::Syntax(e.to_string()))?.into_owned();
            self.count_text(value.len())?;
            let prefix =
                if key == "xmlns" { Some(String::new()) } else { key.strip_prefix("xmlns:").map(str::to_string) };
            match prefix {
                Some(prefix) => {
                    declared += 1;
                    self.declarations += 1;
                    if declared > limits.max_ns_per_element {
                        return Err(XmlError::Limit {
                            what: "namespace declarations on one element",
                            limit: limits.max_ns_per_element,
                        });
                    }
                    if self.declarations > limits.max_ns_per_document {
                        return Err(XmlError::Limit {
                            what: "namespace declarations",
                            limit: limits.max_ns_per_document,
                        });
                    }
                    if !prefix.is_empty() && value.is_empty() {
                        return Err(XmlError::Syntax(format!("xmlns:{prefix} may not be empty")));
                    }
                    let uri = (!value.is_empty()).then(|| Arc::from(value.as_str()));
                    self.scopes.push(Scope { prefix, uri, parent: scope });
                    scope = (self.scopes.len() - 1) as u32;
                }
                None => {
                    if raw_attrs.len() >= limits.max_attributes {
                        return Err(XmlError::Limit {
                            what: "attributes on one element",
                            limit: limits.max_attributes,
                        });
                    }
                    raw_attrs.push((key, value));
                }
            }
        }
        let resolve = |prefix: &str| -> Result<Arc<str>, XmlError> {
            lookup(&self.scopes, scope, prefix)
                .and_then(|u| u.clone())
                .ok_or_else(|| XmlError::UndeclaredPrefix(prefix.to_string()))
        };
        let (prefix, local) = split_qname(&qname);
        let ns = match &prefix {
            Some(p) => Some(resolve(p)?),
            None => lookup(&self.scopes, scope, "").and_then(|u| u.clone()),
        };
        let mut attrs = Vec::with_capacity(raw_attrs.len());
        for (key, value) in raw_attrs {
            let (prefix, local) = split_qname(&key);
            let ns = match &prefix {
                Some(p) => Some(resolve(p)?),
                None => None,
            };
            attrs.push(Attr { prefix, local, ns, value });
        }
        let id = self.elements.len() as u32;
        self.elements.push(ElementData { prefix, local, ns, attrs, children: Vec::new(), scope });
        if let Some(&parent) = self.stack.last() {
            self.elements[parent as usize].children.push(Child::Element(id));
        }
        self.stack.push(id);
        Ok(())
    }
}

fn split_qname(q: &str) -> (Option<String>, String) {
    match q.split_once(':') {
        Some((p, l)) => (Some(p.to_string()), l.to_string()),
        None => (None, q.to_string()),
    }
}

/// Exclusive canonical form of `element`, leaving out the subtree `skip` (the enveloped
/// signature) and treating the prefixes of `inclusive` (the InclusiveNamespaces PrefixList,
/// `#default` for the default namespace) as in inclusive canonicalization.
pub fn exc_c14n(element: Element<'_>, skip: Option<Element<'_>>, inclusive: &[String]) -> String {
    enum Step<'a> {
        Open(Element<'a>),
        Text(&'a str),
        Pi(&'a str, &'a str),
        Close(Element<'a>, usize),
    }
    let inclusive: Vec<&str> = inclusive.iter().map(|p| if p == "#default" { "" } else { p.as_str() }).collect();
    let mut out = String::new();
    // Namespace declarations rendered by output ancestors, innermost last; an element's
    // entries are popped when it closes.
    let mut rendered: Vec<(&str, &str)> = Vec::new();
    let mut steps = vec![Step::Open(element)];
    while let Some(step) = steps.pop() {
        let e = match step {
            Step::Text(t) => {
                escape_text(&mut out, t);
                continue;
            }
            Step::Pi(target, data) => {
                out.push_str("<?");
                out.push_str(target);
                if !data.is_empty() {
                    out.push(' ');
                    out.push_str(data);
                }
                out.push_str("?>");
                continue;
            }
            Step::Close(e, mark) => {
                rendered.truncate(mark);
                out.push_str("</");
                out.push_str(&e.qname());
                out.push('>');
                continue;
            }
            Step::Open(e) => e,
        };
        // Namespace prefixes visibly utilized by this element and its attributes.
        let mut used: Vec<&str> = vec![e.prefix().unwrap_or("")];
        for a in e.attrs() {
            if let Some(p) = a.prefix.as_deref() {
                if p != "xml" {
                    used.push(p);
                }
            }
        }
        for &p in &inclusive {
            if p.is_empty() || e.lookup_prefix(p).is_some() {
                used.push(p);
            }
        }
        used.sort_unstable();
        used.dedup();
        let mark = rendered.len();
        let mut decls: Vec<(&str, &str)> = Vec::new();
        for p in used {
            let value = e.lookup_prefix(p).unwrap_or("");
            let before = rendered.iter().rev().find(|(q, _)| *q == p).map(|(_, v)| *v);
            let differs = if p.is_empty() { value != before.unwrap_or("") } else { before != Some(value) };
            if differs {
                decls.push((p, value));
                rendered.push((p, value));
            }
        }
        out.push('<');
        out.push_str(&e.qname());
        for (p, v) in &decls {
            if p.is_empty() {
                out.push_str(" xmlns=\"");
            } else {
                out.push_str(" xmlns:");
                out.push_str(p);
                out.push_str("=\"");
            }
            escape_attr(&mut out, v);
            out.push('"');
        }
        let mut attrs: Vec<&Attr> = e.attrs().iter().collect();
        attrs.sort_by(|a, b| {
            (a.ns.as_deref().unwrap_or(""), a.local.as_str()).cmp(&(b.ns.as_deref().unwrap_or(""), b.local.as_str()))
        });
        for a in attrs {
            out.push(' ');
            if let Some(p) = &a.prefix {
                out.push_str(p);
                out.push(':');
            }
            out.push_str(&a.local);
            out.push_str("=\"");
            escape_attr(&mut out, &a.value);
            out.push('"');
        }
        out.push('>');
        steps.push(Step::Close(e, mark));
        for child in e.data().children.iter().rev() {
            match child {
                Child::Text(t) => steps.push(Step::Text(t)),
                Child::Pi(target, data) => steps.push(Step::Pi(target, data)),
                Child::Element(id) => {
                    let c = Element { doc: e.doc, id: *id };
                    if skip != Some(c) {
                        steps.push(Step::Open(c));
                    }
                }
            }
        }
    }
    out
}

fn escape_attr(out: &mut String, v: &str) {
    for c in v.chars() {
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

fn escape_text(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

/// Escape a value for use in XML text or a double-quoted attribute.
pub fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&apos;"),
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_saml(text: &str) -> Result<Document, XmlError> {
        parse(text, &Limits::SAML)
    }

    #[test]
    fn exclusive_c14n_renders_only_used_namespaces_sorted() {
        let doc = r#"<?xml version="1.0"?>
<r:Root xmlns:r="urn:r" xmlns:unused="urn:u" xmlns="urn:d"><!-- note --><a:Child xmlns:a="urn:a" b="2" a:x="1" A="&amp;&lt;"><Inner/></a:Child></r:Root>"#;
        let doc = parse_saml(doc).unwrap();
        let root = doc.root();
        let child = root.elements().next().unwrap();
        assert_eq!(
            exc_c14n(child, None, &[]),
            r#"<a:Child xmlns:a="urn:a" A="&amp;&lt;" b="2" a:x="1"><Inner xmlns="urn:d"></Inner></a:Child>"#
        );
        assert_eq!(
            exc_c14n(root, None, &[]),
            r#"<r:Root xmlns:r="urn:r"><a:Child xmlns:a="urn:a" A="&amp;&lt;" b="2" a:x="1"><Inner xmlns="urn:d"></Inner></a:Child></r:Root>"#
        );
        assert_eq!(
            exc_c14n(child, None, &["unused".to_string()]),
            r#"<a:Child xmlns:a="urn:a" xmlns:unused="urn:u" A="&amp;&lt;" b="2" a:x="1"><Inner xmlns="urn:d"></Inner></a:Child>"#
        );
    }

    #[test]
    fn c14n_skips_the_signature_and_undeclares_the_default_namespace() {
        let doc = parse_saml(r#"<a xmlns="urn:d"><s/><b xmlns=""><c/></b>t</a>"#).unwrap();
        let root = doc.root();
        let s = root.elements().next().unwrap();
        assert_eq!(exc_c14n(root, Some(s), &[]), r#"<a xmlns="urn:d"><b xmlns=""><c></c></b>t</a>"#);
    }

    #[test]
    fn entities_and_character_references_in_text() {
        let doc = parse_saml("<a>x &amp; y &#x41;&lt;&gt;<![CDATA[<b>]]>\r\n</a>").unwrap();
        assert_eq!(doc.root().text(), "x & y A<><b>");
        assert_eq!(exc_c14n(doc.root(), None, &[]), "<a>x &amp; y A&lt;&gt;&lt;b&gt;\n</a>");
        assert_eq!(parse_saml("<a>&#252;&#x1F600;&quot;&apos;</a>").unwrap().root().text(), "ü😀\"'");
        assert!(matches!(parse_saml("<a>&lol;</a>"), Err(XmlError::Syntax(_))));
        assert!(matches!(parse_saml("<a>&#0;</a>"), Err(XmlError::Syntax(_))));
    }

    #[test]
    fn processing_instructions_are_canonicalized_but_not_text() {
        let doc = parse_saml("<?before x?><a>x<?p  some\r\ndata ?>y<?q?></a><?after?>").unwrap();
        assert_eq!(doc.root().text(), "xy");
        assert_eq!(exc_c14n(doc.root(), None, &[]), "<a>x<?p some\ndata ?>y<?q?></a>");
    }

    #[test]
    fn doctype_is_rejected() {
        assert_eq!(parse_saml("<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>").unwrap_err(), XmlError::Doctype);
    }

    #[test]
    fn undeclared_prefix_is_an_error() {
        assert!(matches!(parse_saml("<p:x/>"), Err(XmlError::UndeclaredPrefix(_))));
        assert!(matches!(parse_saml(r#"<x xmlns:p="urn:p"/><p:y/>"#), Err(XmlError::Syntax(_))));
    }

    #[test]
    fn fragments_see_the_bindings_of_their_context() {
        let outer = parse_saml(r#"<a xmlns:p="urn:p" xmlns="urn:d"><b xmlns:p="urn:q"><c/></b></a>"#).unwrap();
        let c = outer.root().descendants("urn:d", "c")[0];
        let mut scope = c.in_scope_namespaces();
        scope.sort();
        assert_eq!(scope, [("".to_string(), "urn:d".to_string()), ("p".to_string(), "urn:q".to_string())]);
        let frag = parse_in_scope("<p:x/>", &scope, &Limits::SAML).unwrap();
        assert_eq!(frag.root().ns(), Some("urn:q"));
        assert_eq!(exc_c14n(frag.root(), None, &[]), r#"<p:x xmlns:p="urn:q"></p:x>"#);
    }

    fn nested(depth: usize) -> String {
        format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth))
    }

    #[test]
    fn nesting_depth_is_limited() {
        assert!(parse_saml(&nested(64)).is_ok());
        assert_eq!(
            parse_saml(&nested(65)).unwrap_err(),
            XmlError::Limit { what: "levels of element nesting", limit: 64 }
        );
        // Far beyond the limit, without exhausting the stack.
        assert!(matches!(parse_saml(&nested(1_000_000)), Err(XmlError::Limit { .. })));
    }

    #[test]
    fn deep_documents_within_generous_limits_are_handled_without_recursion() {
        // A 1 MiB-deep tree parsed, searched, canonicalized and dropped on a small stack.
        let limits = Limits { max_depth: 200_000, max_elements: 200_000, ..Limits::METADATA };
        let handle = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                let doc = parse(&nested(200_000), &limits).unwrap();
                assert_eq!(doc.root().descendants("urn:none", "a").len(), 0);
                assert!(doc.root().find_by_id("x").is_none());
                exc_c14n(doc.root(), None, &[]).len()
            })
            .unwrap();
        assert_eq!(handle.join().unwrap(), 200_000 * 7);
    }

    #[test]
    fn element_attribute_namespace_and_text_counts_are_limited() {
        let limit = |r: Result<Document, XmlError>| match r {
            Err(XmlError::Limit { what, .. }) => what,
            other => panic!("expected a limit, got {other:?}"),
        };
        assert_eq!(limit(parse_saml(&format!("<r>{}</r>", "<a/>".repeat(5000)))), "elements");
        let attrs: String = (0..65).map(|i| format!(" a{i}=\"\"")).collect();
        assert_eq!(limit(parse_saml(&format!("<r{attrs}/>"))), "attributes on one element");
        let decls: String = (0..33).map(|i| format!(" xmlns:p{i}=\"urn:{i}\"")).collect();
        assert_eq!(limit(parse_saml(&format!("<r{decls}/>"))), "namespace declarations on one element");
        let children: String = (0..300).map(|i| format!("<c xmlns:q{i}=\"urn:{i}\"/>")).collect();
        assert_eq!(limit(parse_saml(&format!("<r>{children}</r>"))), "namespace declarations");
        let small = Limits { max_text_bytes: 10, ..Limits::SAML };
        assert_eq!(limit(parse("<r>01234567890</r>", &small)), "bytes of text");
        assert_eq!(limit(parse("<r a=\"01234567890\"/>", &small)), "bytes of text");
    }
}
