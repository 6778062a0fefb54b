//! Appending parameters to a URL's query string, the one way every layer
//! does it (CAS tickets, OIDC codes and errors, links between pages).

/// `url` with `pairs` form-encoded and appended to its query (after `?`,
/// or `&` when it already has one); a fragment stays at the end.
pub fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.extend_pairs(pairs);
    let query = query.finish();
    let sep = if base.contains('?') { "&" } else { "?" };
    let mut out = format!("{base}{sep}{query}");
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::with_query;

    #[test]
    fn appends_with_the_right_separator_and_keeps_the_fragment() {
        assert_eq!(with_query("https://a.fr/p", &[("ticket", "ST-1")]), "https://a.fr/p?ticket=ST-1");
        assert_eq!(with_query("https://a.fr/p?x=1", &[("a", "b c")]), "https://a.fr/p?x=1&a=b+c");
        assert_eq!(with_query("https://a.fr/p#top", &[("a", "é&")]), "https://a.fr/p?a=%C3%A9%26#top");
        assert_eq!(
            with_query("/cas/login", &[("service", "https://s.fr/?a=1&b=2")]),
            "/cas/login?service=https%3A%2F%2Fs.fr%2F%3Fa%3D1%26b%3D2"
        );
    }
}
