//! Citizens' feedback through the real server and back out with `portalctl feedback`: stored
//! per tenant (tenant A's feedback never appears for B), linked from every page kind, refused
//! when posted cross-site, too large or too often (429 with Retry-After).

mod support;

use support::{send, Response, Server, TestEnv, CONTENT_A, CONTENT_B};

const A: &str = "service.espelkamp.test";
const B: &str = "service.detmold.test";

/// A form post as a browser sends it from the tenant's own page, from client `client` (the
/// server trusts `X-Forwarded-For` from its loopback peer, as from an Ingress).
fn post(server: &Server, host: &str, client: &str, fields: &[(&str, &str)]) -> Response {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
    post_raw(server, host, &[("Origin", &format!("https://{host}")), ("Sec-Fetch-Site", "same-origin")], client, &body)
}

fn post_raw(server: &Server, host: &str, headers: &[(&str, &str)], client: &str, body: &str) -> Response {
    let mut all = vec![("Content-Type", "application/x-www-form-urlencoded"), ("X-Forwarded-For", client)];
    all.extend_from_slice(headers);
    send(server.port, "POST", host, "/rueckmeldung", &all, Some(body.as_bytes())).expect("POST /rueckmeldung")
}

fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// `portalctl feedback <args>` with the admin connection: exit code, stdout, stderr.
fn feedback(env: &TestEnv, args: &[&str]) -> (i32, String, String) {
    let out = env
        .portalctl()
        .arg("feedback")
        .args(args)
        .args(["--database-url", &env.url])
        .env_remove("DATABASE_URL")
        .output()
        .expect("run portalctl feedback");
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

fn export_json(env: &TestEnv, slug: &str) -> Vec<serde_json::Value> {
    let (code, out, err) = feedback(env, &["export", "--tenant", slug, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

async fn env() -> Option<TestEnv> {
    let env = TestEnv::new(&["espelkamp", "detmold"]).await?;
    env.import("espelkamp", CONTENT_A).await;
    env.import("detmold", CONTENT_B).await;
    Some(env)
}

#[tokio::test(flavor = "multi_thread")]
async fn feedback_is_stored_per_tenant_and_exported_per_tenant() {
    let Some(env) = env().await else { return };
    let server = env.start_server();

    // The form is linked from every page kind, and a service page asks whether it helped.
    for path in ["/", "/leistungen", "/leistungen/hundeanmeldung", "/suche?q=hund", "/gibt-es-nicht", "/rueckmeldung"] {
        let page = server.get(A, path);
        assert!(
            page.body.contains("<a href=\"/rueckmeldung\">Feedback / Barriere melden</a>"),
            "{path}: {}",
            page.body
        );
    }
    let service = server.get(A, "/leistungen/hundeanmeldung").body;
    assert!(service.contains("War diese Seite hilfreich?"), "{service}");
    assert!(service.contains("name=\"leistung\" value=\"hundeanmeldung\""), "{service}");
    let form = server.get(A, "/rueckmeldung");
    assert_eq!(form.status, 200);
    assert!(form.body.contains("action=\"/rueckmeldung\"") && form.body.contains("E-Mail-Adresse (optional)"));
    assert!(!form.body.contains("<script"), "no script needed");

    let sent = [
        (
            A,
            "192.0.2.1",
            vec![
                ("art", "barriere"),
                ("seite", "/leistungen"),
                ("nachricht", "Kontrast im Kopfbereich zu gering"),
                ("email", "buerger@example.de"),
            ],
        ),
        (
            A,
            "192.0.2.1",
            vec![
                ("art", "hilfreich"),
                ("leistung", "hundeanmeldung"),
                ("hilfreich", "ja"),
                ("nachricht", "Alles klar beschrieben"),
            ],
        ),
        (B, "192.0.2.2", vec![("art", "allgemein"), ("nachricht", "Öffnungszeiten vom Hafenamt fehlen")]),
        (B, "192.0.2.2", vec![("art", "hilfreich"), ("leistung", "bootsliegeplatz"), ("hilfreich", "nein")]),
    ];
    for (host, client, fields) in &sent {
        let r = post(&server, host, client, fields);
        assert_eq!(r.status, 303, "{host} {fields:?}: {r:?}");
        let to = header(&r, "location").expect("redirect to the thanks");
        assert!(to.starts_with("/rueckmeldung/danke"), "{to}");
        let thanks = server.get(host, to);
        assert_eq!(thanks.status, 200);
        assert!(thanks.body.contains("Vielen Dank für Ihre Rückmeldung"), "{}", thanks.body);
    }
    // A service of another tenant (or none published) is not one to give feedback on.
    let r =
        post(&server, A, "192.0.2.3", &[("art", "hilfreich"), ("leistung", "bootsliegeplatz"), ("hilfreich", "ja")]);
    assert_eq!(r.status, 404, "{r:?}");

    let a = export_json(&env, "espelkamp");
    let b = export_json(&env, "detmold");
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(b.len(), 2, "{b:?}");
    assert_eq!(a[0]["kind"], "accessibility");
    assert_eq!(a[0]["message"], "Kontrast im Kopfbereich zu gering");
    assert_eq!(a[0]["email"], "buerger@example.de");
    assert_eq!(a[0]["page"], "/leistungen");
    assert_eq!(
        (&a[1]["kind"], &a[1]["serviceId"], &a[1]["helpful"]),
        (&"helpful".into(), &"hundeanmeldung".into(), &true.into())
    );
    assert!(a[0]["receivedAt"].as_str().is_some_and(|t| t.ends_with('Z')), "{:?}", a[0]);
    assert_eq!(
        (&b[1]["serviceId"], &b[1]["helpful"], &b[1]["email"]),
        (&"bootsliegeplatz".into(), &false.into(), &serde_json::Value::Null)
    );
    let a_text = serde_json::to_string(&a).unwrap();
    let b_text = serde_json::to_string(&b).unwrap();
    for w in ["Hafenamt", "bootsliegeplatz"] {
        assert!(!a_text.contains(w), "B's feedback in A's export: {a_text}");
    }
    for w in ["Kontrast", "hundeanmeldung", "buerger@"] {
        assert!(!b_text.contains(w), "A's feedback in B's export: {b_text}");
    }

    // CSV is the export's default; `list` is a table.
    let (code, csv_text, err) = feedback(&env, &["export", "--tenant", "espelkamp"]);
    assert_eq!(code, 0, "{err}");
    let mut rows = csv::Reader::from_reader(csv_text.as_bytes());
    assert_eq!(
        rows.headers().unwrap().iter().collect::<Vec<_>>(),
        ["id", "receivedAt", "kind", "serviceId", "helpful", "page", "message", "email"]
    );
    let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!((&rows[1][2], &rows[1][3], &rows[1][4]), ("helpful", "hundeanmeldung", "true"));
    let (code, table, _) = feedback(&env, &["list", "--tenant", "detmold"]);
    assert_eq!(code, 0);
    assert!(table.contains("KIND") && table.contains("general") && table.contains("Öffnungszeiten"), "{table}");
    let (code, later, _) = feedback(&env, &["list", "--tenant", "detmold", "--since", "2999-01-01", "-o", "json"]);
    assert_eq!((code, later.trim()), (0, "[]"));
    let (code, _, _) = feedback(&env, &["list", "--tenant", "detmold", "--since", "gestern"]);
    assert_eq!(code, 2, "a malformed date is a usage error");
    let (code, _, err) = feedback(&env, &["list", "--tenant", "nirgendwo"]);
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = feedback(&env, &["list", "--tenant", "detmold", "-o", "markdown"]);
    assert_eq!(code, 2, "{err}");
    let out = env
        .portalctl()
        .args(["feedback", "list", "--tenant", "detmold", "--database-url", "postgres://portal@127.0.0.1:1/portal"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "database unreachable: {}", String::from_utf8_lossy(&out.stderr));

    // What citizens wrote never reaches the server's log.
    let log = server.log_text();
    for w in ["Kontrast", "buerger@example.de", "Öffnungszeiten", "Alles klar"] {
        assert!(!log.contains(w), "{w:?} in the log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_site_oversize_and_too_many_submissions_are_refused() {
    let Some(env) = env().await else { return };
    let server = env.start_server_with(&["--feedback-per-client", "2", "--feedback-per-tenant", "4"], |c| c);
    let report = "art=barriere&nachricht=Der+Knopf+ist+nicht+erreichbar";

    // Cross-site: the browser says so, or the Origin is another site's, or nothing vouches.
    for headers in [
        vec![("Sec-Fetch-Site", "cross-site"), ("Origin", "https://boese.example")],
        vec![("Origin", "https://boese.example")],
        vec![("Sec-Fetch-Site", "same-site")],
        vec![],
    ] {
        let r = post_raw(&server, A, &headers, "192.0.2.9", report);
        assert_eq!(r.status, 403, "{headers:?}: {r:?}");
        assert!(
            r.body.contains("Rückmeldung nicht angenommen") && r.body.contains("Feedback / Barriere melden"),
            "themed"
        );
    }

    // Per client: two, then 429 with Retry-After; other clients still get through until the
    // tenant's four are used up.
    for _ in 0..2 {
        assert_eq!(post(&server, A, "192.0.2.1", &[("art", "barriere"), ("nachricht", "x")]).status, 303);
    }
    let r = post(&server, A, "192.0.2.1", &[("art", "barriere"), ("nachricht", "x")]);
    assert_eq!(r.status, 429, "{r:?}");
    let retry: u64 = header(&r, "retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=1800).contains(&retry), "{retry}");
    assert!(r.body.contains("Zu viele Rückmeldungen"), "{}", r.body);
    for _ in 0..2 {
        assert_eq!(post(&server, A, "192.0.2.2", &[("art", "barriere"), ("nachricht", "x")]).status, 303);
    }
    let r = post(&server, A, "192.0.2.6", &[("art", "barriere"), ("nachricht", "x")]);
    assert_eq!(r.status, 429, "the tenant's budget is used up: {r:?}");
    assert!(header(&r, "retry-after").is_some());
    // Another tenant has its own budget.
    assert_eq!(post(&server, B, "192.0.2.3", &[("art", "allgemein"), ("nachricht", "y")]).status, 303);

    // Too large: the body (refused by its declared length, and by what arrives) or a text.
    let big = format!("art=barriere&nachricht={}", "a".repeat(40 * 1024));
    let same = [("Origin", "https://service.detmold.test"), ("Sec-Fetch-Site", "same-origin")];
    let r = post_raw(&server, B, &same, "192.0.2.4", &big);
    assert_eq!(r.status, 413, "{r:?}");
    assert!(r.body.contains("Rückmeldung zu lang"), "{}", r.body);
    let chunked = format!("{:x}\r\n{big}\r\n0\r\n\r\n", big.len());
    let r = post_raw(&server, B, &[same[0], same[1], ("Transfer-Encoding", "chunked")], "192.0.2.7", &chunked);
    assert_eq!(r.status, 413, "a body without a declared length: {r:?}");
    let long = "ä".repeat(2001);
    let r = post(&server, B, "192.0.2.5", &[("art", "barriere"), ("nachricht", &long)]);
    assert_eq!(r.status, 422, "{r:?}");
    assert!(r.body.contains("höchstens 2000 Zeichen") && r.body.contains("role=\"alert\""), "{}", r.body);

    // Only what was accepted is stored.
    assert_eq!(export_json(&env, "espelkamp").len(), 4);
    assert_eq!(export_json(&env, "detmold").len(), 1);
}
