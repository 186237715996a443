//! A small namespace-aware XML tree for SAML messages, and exclusive XML canonicalization
//! (`http://www.w3.org/2001/10/xml-exc-c14n#`, without comments) of a subtree.
//!
//! Only what SAML needs: elements, attributes, namespace declarations and text. Comments and
//! processing instructions are dropped (exclusive c14n without comments drops them too);
//! a DOCTYPE is rejected outright (no entity expansion, no external references).

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The XML namespace, bound to `xml` implicitly.
pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    #[error("malformed XML: {0}")]
    Syntax(String),
    #[error("XML with a DOCTYPE is not accepted")]
    Doctype,
    #[error("undeclared namespace prefix {0:?}")]
    UndeclaredPrefix(String),
    #[error("the document has no root element")]
    Empty,
}

/// A node of the tree.
#[derive(Debug, Clone)]
pub enum Node {
    Element(Element),
    Text(String),
}

/// An attribute (never a namespace declaration).
#[derive(Debug, Clone)]
pub struct Attr {
    pub prefix: Option<String>,
    pub local: String,
    /// Namespace URI (only for prefixed attributes).
    pub ns: Option<String>,
    pub value: String,
}

/// An element with its in-scope namespaces.
#[derive(Debug, Clone)]
pub struct Element {
    pub prefix: Option<String>,
    pub local: String,
    /// Namespace URI of the element, if any.
    pub ns: Option<String>,
    pub attrs: Vec<Attr>,
    pub children: Vec<Node>,
    /// Every namespace binding in scope here (prefix → URI; `""` is the default namespace).
    pub scope: Arc<BTreeMap<String, String>>,
}

impl Element {
    /// Whether this element is `{ns}local`.
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.local == local && self.ns.as_deref() == Some(ns)
    }

    /// The value of an unqualified attribute.
    pub fn attr(&self, local: &str) -> Option<&str> {
        self.attrs.iter().find(|a| a.ns.is_none() && a.local == local).map(|a| a.value.as_str())
    }

    /// Child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// Child elements named `{ns}local`.
    pub fn children_named<'a>(&'a self, ns: &'a str, local: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |e| e.is(ns, local))
    }

    /// The first child element named `{ns}local`.
    pub fn child(&self, ns: &str, local: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(ns, local))
    }

    /// All descendants (depth first, self excluded) named `{ns}local`.
    pub fn descendants<'a>(&'a self, ns: &'a str, local: &'a str, out: &mut Vec<&'a Element>) {
        for e in self.elements() {
            if e.is(ns, local) {
                out.push(e);
            }
            e.descendants(ns, local, out);
        }
    }

    /// Concatenated text content of the direct text children, trimmed.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                s.push_str(t);
            }
        }
        s.trim().to_string()
    }

    fn qname(&self) -> String {
        match &self.prefix {
            Some(p) => format!("{p}:{}", self.local),
            None => self.local.clone(),
        }
    }
}

/// Parse a document into its root element.
pub fn parse(text: &str) -> Result<Element, XmlError> {
    parse_in_scope(text, &BTreeMap::new())
}

/// Parse a fragment (e.g. a decrypted element) with the namespace bindings in scope where it
/// belongs.
pub fn parse_in_scope(text: &str, scope: &BTreeMap<String, String>) -> Result<Element, XmlError> {
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.trim_text(false);
    config.expand_empty_elements = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut base_scope = scope.clone();
    base_scope.insert("xml".to_string(), XML_NS.to_string());
    let base_scope = Arc::new(base_scope);
    loop {
        let event = reader.read_event().map_err(|e| XmlError::Syntax(e.to_string()))?;
        match event {
            Event::Start(start) => {
                if root.is_some() {
                    return Err(XmlError::Syntax("content after the root element".into()));
                }
                let parent_scope = stack.last().map(|e| e.scope.clone()).unwrap_or_else(|| base_scope.clone());
                stack.push(start_element(&start, &parent_scope)?);
            }
            Event::End(_) => {
                let done = stack.pop().ok_or_else(|| XmlError::Syntax("unbalanced end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(done)),
                    None => root = Some(done),
                }
            }
            Event::Empty(_) => unreachable!("empty elements are expanded"),
            Event::Text(t) => {
                let raw = String::from_utf8_lossy(t.as_ref()).replace("\r\n", "\n").replace('\r', "\n");
                let value = quick_xml::escape::unescape(&raw).map_err(|e| XmlError::Syntax(e.to_string()))?;
                push_text(&mut stack, &root, value.into_owned())?;
            }
            Event::GeneralRef(r) => {
                let name = String::from_utf8_lossy(r.as_ref()).into_owned();
                let value = quick_xml::escape::unescape(&format!("&{name};"))
                    .map_err(|e| XmlError::Syntax(e.to_string()))?
                    .into_owned();
                push_text(&mut stack, &root, value)?;
            }
            Event::CData(c) => {
                let value = String::from_utf8_lossy(c.as_ref()).into_owned();
                push_text(&mut stack, &root, value)?;
            }
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Comment(_) | Event::PI(_) | Event::Decl(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Syntax("unclosed element at end of document".into()));
    }
    root.ok_or(XmlError::Empty)
}

fn push_text(stack: &mut [Element], root: &Option<Element>, value: String) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(e) => {
            if let Some(Node::Text(prev)) = e.children.last_mut() {
                prev.push_str(&value);
            } else {
                e.children.push(Node::Text(value));
            }
            Ok(())
        }
        None if value.trim().is_empty() => Ok(()),
        None if root.is_some() => Err(XmlError::Syntax("text after the root element".into())),
        None => Err(XmlError::Syntax("text before the root element".into())),
    }
}

fn split_qname(q: &str) -> (Option<String>, String) {
    match q.split_once(':') {
        Some((p, l)) => (Some(p.to_string()), l.to_string()),
        None => (None, q.to_string()),
    }
}

fn start_element(start: &BytesStart<'_>, parent_scope: &Arc<BTreeMap<String, String>>) -> Result<Element, XmlError> {
    let qname = String::from_utf8_lossy(start.name().as_ref()).into_owned();
    let mut decls: Vec<(String, String)> = Vec::new();
    let mut raw_attrs: Vec<(String, String)> = Vec::new();
    for a in start.attributes() {
        let a = a.map_err(|e| XmlError::Syntax(e.to_string()))?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        // Attribute-value normalization: literal whitespace characters become spaces.
        let raw = String::from_utf8_lossy(&a.value).replace(['\t', '\n', '\r'], " ");
        let value = quick_xml::escape::unescape(&raw).map_err(|e| XmlError::Syntax(e.to_string()))?.into_owned();
        if key == "xmlns" {
            decls.push((String::new(), value));
        } else if let Some(p) = key.strip_prefix("xmlns:") {
            decls.push((p.to_string(), value));
        } else {
            raw_attrs.push((key, value));
        }
    }
    let scope = if decls.is_empty() {
        parent_scope.clone()
    } else {
        let mut s = (**parent_scope).clone();
        for (p, v) in decls {
            if p.is_empty() && v.is_empty() {
                s.remove("");
            } else {
                s.insert(p, v);
            }
        }
        Arc::new(s)
    };
    let (prefix, local) = split_qname(&qname);
    let ns = match &prefix {
        Some(p) => Some(scope.get(p).cloned().ok_or_else(|| XmlError::UndeclaredPrefix(p.clone()))?),
        None => scope.get("").cloned(),
    };
    let mut attrs = Vec::with_capacity(raw_attrs.len());
    for (key, value) in raw_attrs {
        let (prefix, local) = split_qname(&key);
        let ns = match &prefix {
            Some(p) => Some(scope.get(p).cloned().ok_or_else(|| XmlError::UndeclaredPrefix(p.clone()))?),
            None => None,
        };
        attrs.push(Attr { prefix, local, ns, value });
    }
    Ok(Element { prefix, local, ns, attrs, children: Vec::new(), scope })
}

/// Exclusive canonical form of `element`, leaving out the subtree `skip` (the enveloped
/// signature) and treating the prefixes of `inclusive` (the InclusiveNamespaces PrefixList,
/// `#default` for the default namespace) as in inclusive canonicalization.
pub fn exc_c14n(element: &Element, skip: Option<&Element>, inclusive: &[String]) -> String {
    let mut out = String::new();
    let rendered = BTreeMap::new();
    write_element(&mut out, element, skip, inclusive, &rendered);
    out
}

fn write_element(
    out: &mut String,
    e: &Element,
    skip: Option<&Element>,
    inclusive: &[String],
    rendered: &BTreeMap<String, String>,
) {
    // Namespace prefixes visibly utilized by this element and its attributes.
    let mut used: Vec<String> = vec![e.prefix.clone().unwrap_or_default()];
    for a in &e.attrs {
        if let Some(p) = &a.prefix {
            if p != "xml" {
                used.push(p.clone());
            }
        }
    }
    for p in inclusive {
        let p = if p == "#default" { String::new() } else { p.clone() };
        if p.is_empty() || e.scope.contains_key(&p) {
            used.push(p);
        }
    }
    used.sort();
    used.dedup();
    let mut now_rendered = rendered.clone();
    let mut decls: Vec<(String, String)> = Vec::new();
    for p in used {
        let value = e.scope.get(&p).cloned().unwrap_or_default();
        let before = rendered.get(&p).cloned().unwrap_or_default();
        if p.is_empty() {
            if value != before {
                decls.push((p.clone(), value.clone()));
                now_rendered.insert(p, value);
            }
        } else if rendered.get(&p) != Some(&value) {
            decls.push((p.clone(), value.clone()));
            now_rendered.insert(p, value);
        }
    }
    let qname = e.qname();
    out.push('<');
    out.push_str(&qname);
    for (p, v) in &decls {
        if p.is_empty() {
            out.push_str(" xmlns=\"");
        } else {
            out.push_str(" xmlns:");
            out.push_str(p);
            out.push_str("=\"");
        }
        escape_attr(out, v);
        out.push('"');
    }
    let mut attrs: Vec<&Attr> = e.attrs.iter().collect();
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
        escape_attr(out, &a.value);
        out.push('"');
    }
    out.push('>');
    for child in &e.children {
        match child {
            Node::Text(t) => escape_text(out, t),
            Node::Element(c) => {
                if skip.is_some_and(|s| std::ptr::eq(s, c)) {
                    continue;
                }
                write_element(out, c, skip, inclusive, &now_rendered);
            }
        }
    }
    out.push_str("</");
    out.push_str(&qname);
    out.push('>');
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

    #[test]
    fn exclusive_c14n_renders_only_used_namespaces_sorted() {
        let doc = r#"<?xml version="1.0"?>
<r:Root xmlns:r="urn:r" xmlns:unused="urn:u" xmlns="urn:d"><!-- note --><a:Child xmlns:a="urn:a" b="2" a:x="1" A="&amp;&lt;"><Inner/></a:Child></r:Root>"#;
        let root = parse(doc).unwrap();
        let child = root.elements().next().unwrap();
        assert_eq!(
            exc_c14n(child, None, &[]),
            r#"<a:Child xmlns:a="urn:a" A="&amp;&lt;" b="2" a:x="1"><Inner xmlns="urn:d"></Inner></a:Child>"#
        );
        assert_eq!(
            exc_c14n(&root, None, &[]),
            r#"<r:Root xmlns:r="urn:r"><a:Child xmlns:a="urn:a" A="&amp;&lt;" b="2" a:x="1"><Inner xmlns="urn:d"></Inner></a:Child></r:Root>"#
        );
        assert_eq!(
            exc_c14n(child, None, &["unused".to_string()]),
            r#"<a:Child xmlns:a="urn:a" xmlns:unused="urn:u" A="&amp;&lt;" b="2" a:x="1"><Inner xmlns="urn:d"></Inner></a:Child>"#
        );
    }

    #[test]
    fn entities_and_character_references_in_text() {
        let root = parse("<a>x &amp; y &#x41;&lt;&gt;<![CDATA[<b>]]>\r\n</a>").unwrap();
        assert_eq!(root.text(), "x & y A<><b>");
        assert_eq!(exc_c14n(&root, None, &[]), "<a>x &amp; y A&lt;&gt;&lt;b&gt;\n</a>");
    }

    #[test]
    fn doctype_is_rejected() {
        assert!(matches!(parse("<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>"), Err(XmlError::Doctype)));
    }

    #[test]
    fn undeclared_prefix_is_an_error() {
        assert!(matches!(parse("<p:x/>"), Err(XmlError::UndeclaredPrefix(_))));
    }
}
