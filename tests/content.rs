//! `portalctl content` against a real PostgreSQL: starter import (idempotent) fitted to the tenant's authority,
//! validation with precise errors and nothing written, LeiKa keys and placeholders, CSV, publish/unpublish,
//! adoption between tenants.

mod support;

use support::TestEnv;

fn run(env: &TestEnv, args: &[&str]) -> (bool, String, String) {
    let out = env.portalctl().args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

async fn count(env: &TestEnv, slug: &str, sql: &str) -> i64 {
    let c = support::connect(&env.url).await;
    c.batch_execute(&format!("SET search_path = {}, portalctl_ext", env.tenant(slug).schema)).await.unwrap();
    c.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn starter_import_is_idempotent_and_publishable() {
    let Some(env) = TestEnv::new(&["espelkamp", "detmold"]).await else { return };
    let (ok, _, err) = run(&env, &["content", "import", "--tenant", "espelkamp", "--starter"]);
    assert!(ok, "{err}");
    assert!(err.contains("espelkamp: imported 14 categories"), "{err}");
    // What the import reports: the authority, what it left out, the placeholders and the unknown LeiKa keys.
    assert!(
        err.contains(
            "espelkamp: the services of a kreisangehörige Gemeinde; 11 left out as another authority's task: "
        ),
        "{err}"
    );
    let placeholders = "address, opening hours, phone or e-mail are placeholders; replace them before publishing \
                        (6 entries): facility \"buergerbuero\"";
    assert!(err.contains(placeholders), "{err}");
    let unknown = "LeiKa key unknown (35 entries): service \"wohnsitz-abmelden\", service \"meldebescheinigung\"";
    assert!(err.contains(unknown), "{err}");
    let services = count(&env, "espelkamp", "SELECT count(*) FROM service").await;
    assert!(services >= 40, "{services}");
    assert_eq!(count(&env, "espelkamp", "SELECT count(*) FROM service WHERE published").await, 0);
    let stamp = count(&env, "espelkamp", "SELECT count(DISTINCT updated_at) FROM service").await;

    // Twice: nothing changes.
    let (ok, _, err) = run(&env, &["content", "import", "--tenant", "espelkamp", "--starter"]);
    assert!(ok, "{err}");
    assert_eq!(count(&env, "espelkamp", "SELECT count(*) FROM service").await, services);
    assert_eq!(count(&env, "espelkamp", "SELECT count(DISTINCT updated_at) FROM service").await, stamp);
    assert_eq!(count(&env, "detmold", "SELECT count(*) FROM service").await, 0, "other tenant touched");

    let (ok, _, err) = run(&env, &["content", "publish", "--tenant", "espelkamp", "--service", "hundeanmeldung"]);
    assert!(ok, "{err}");
    assert_eq!(count(&env, "espelkamp", "SELECT count(*) FROM service WHERE published").await, 1);
    let (ok, _, err) = run(&env, &["content", "publish", "--tenant", "espelkamp", "--service", "gibt-es-nicht"]);
    assert!(!ok);
    assert!(err.contains("no service \"gibt-es-nicht\""), "{err}");
    let (ok, _, err) = run(&env, &["content", "publish", "--tenant", "espelkamp", "--all"]);
    assert!(ok, "{err}");
    assert!(
        err.contains("still hold placeholders (\"Platzhalter\")") && err.contains("facility buergerbuero"),
        "{err}"
    );
    assert_eq!(count(&env, "espelkamp", "SELECT count(*) FROM service WHERE NOT published").await, 0);
    assert!(count(&env, "espelkamp", "SELECT count(*) FROM staff WHERE published").await > 0);
    // Re-import keeps the publication state.
    run(&env, &["content", "import", "--tenant", "espelkamp", "--starter"]);
    assert_eq!(count(&env, "espelkamp", "SELECT count(*) FROM service WHERE NOT published").await, 0);
    let (ok, _, _) = run(&env, &["content", "unpublish", "--tenant", "espelkamp", "--service", "sperrmuell"]);
    assert!(ok);
    assert_eq!(count(&env, "espelkamp", "SELECT count(*) FROM service WHERE NOT published").await, 1);
}

/// The starter catalogue gives each authority its own services: a Kreis the Kreis services, a Gemeinde the
/// municipal ones, a kreisfreie Stadt both; with the LeiKa keys, competences and placeholders stored.
#[tokio::test(flavor = "multi_thread")]
async fn starter_import_fits_the_authority() {
    let Some(env) = TestEnv::new(&["kreis-lippe", "kirchlengern", "bielefeld", "detmold"]).await else { return };
    for slug in ["kreis-lippe", "kirchlengern", "bielefeld"] {
        let (ok, _, err) = run(&env, &["content", "import", "--tenant", slug, "--starter"]);
        assert!(ok, "{slug}: {err}");
    }
    let has = |slug: &'static str, id: &'static str| {
        let env = &env;
        async move { count(env, slug, &format!("SELECT count(*) FROM service WHERE id = '{id}'")).await == 1 }
    };
    for id in ["hundeanmeldung", "wohnsitz-anmelden", "personalausweis"] {
        assert!(has("kirchlengern", id).await && has("bielefeld", id).await && !has("kreis-lippe", id).await, "{id}");
    }
    for id in ["kfz-zulassung", "fuehrerschein-umtausch", "kita-platz", "baugenehmigung"] {
        assert!(!has("kirchlengern", id).await && has("bielefeld", id).await && has("kreis-lippe", id).await, "{id}");
    }
    let n = |slug: &'static str| count(&env, slug, "SELECT count(*) FROM service");
    let (kreis, gemeinde, kreisfrei) = (n("kreis-lippe").await, n("kirchlengern").await, n("bielefeld").await);
    assert_eq!(kreisfrei, 57);
    assert_eq!(kreis + gemeinde, kreisfrei + 6, "the services of both levels go to both");
    assert_eq!(count(&env, "kreis-lippe", "SELECT count(*) FROM facility WHERE id = 'buergerbuero'").await, 0);
    // Stored: competence, LeiKa key, placeholder flags.
    let key = "SELECT count(*) FROM service WHERE id = 'hundeanmeldung' AND leika_key = '99102013104000' AND competence = 'gemeinde'";
    assert_eq!(count(&env, "kirchlengern", key).await, 1);
    assert_eq!(count(&env, "kirchlengern", "SELECT count(*) FROM facility WHERE NOT placeholder").await, 0);
    assert_eq!(count(&env, "kirchlengern", "SELECT count(*) FROM staff WHERE NOT placeholder").await, 0);
    let fee = "SELECT count(*) FROM service WHERE id = 'personalausweis' AND costs LIKE '46 Euro, für Antragstellende unter 24 Jahren 27,60 Euro%'";
    assert_eq!(count(&env, "bielefeld", fee).await, 1);

    // A große kreisangehörige Stadt with its own Bauaufsicht (declared in its file, `spec.ownTasks`) and Jugendamt
    // (given on the command line) takes these Kreis tasks; an unknown task is refused.
    let file = env.group_dir().join("detmold.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("  wave: main\n", "  wave: main\n  ownTasks: [bauaufsicht]\n")).unwrap();
    let (ok, _, err) = run(&env, &["content", "import", "--tenant", "detmold", "--starter", "--own-task", "jugendamt"]);
    assert!(ok, "{err}");
    assert!(err.contains("performing the Kreis task(s) bauaufsicht, jugendamt itself"), "{err}");
    assert_eq!(
        count(&env, "detmold", "SELECT count(*) FROM service WHERE id IN ('kita-platz', 'elternbeitrag')").await,
        2
    );
    assert_eq!(
        count(&env, "detmold", "SELECT count(*) FROM service WHERE id IN ('baugenehmigung', 'bauvoranfrage')").await,
        2
    );
    assert_eq!(count(&env, "detmold", "SELECT count(*) FROM service WHERE id = 'kfz-zulassung'").await, 0);
    let (ok, _, err) =
        run(&env, &["content", "import", "--tenant", "kreis-lippe", "--starter", "--own-task", "jugendamt"]);
    assert!(!ok && err.contains("this tenant is a Kreis"), "{err}");

    // An own file: the LeiKa key is checked on import, and nothing is written when it is malformed.
    let file = env.dir.path().join("leika.yaml");
    std::fs::write(&file, "services:\n  - id: hundesteuer\n    title: Hundesteuer\n    leikaKey: \"9910201310400\"\n")
        .unwrap();
    let (ok, _, err) = run(&env, &["content", "import", "--tenant", "detmold", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("field leikaKey: \"9910201310400\" is not a LeiKa key (14 digits"), "{err}");
    assert_eq!(count(&env, "detmold", "SELECT count(*) FROM service WHERE id = 'hundesteuer'").await, 0);
    std::fs::write(&file, "services:\n  - id: hundesteuer\n    title: Hundesteuer\n").unwrap();
    let (ok, _, err) = run(&env, &["content", "import", "--tenant", "detmold", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        err.contains("warning: tenant detmold: ")
            && err.contains("service \"hundesteuer\": field leikaKey: LeiKa key unknown"),
        "{err}"
    );
    // The schema refuses a malformed key even past the import's check.
    let c = support::connect(&env.url).await;
    let schema = &env.tenant("detmold").schema;
    let bad = c.batch_execute(&format!("UPDATE {schema}.service SET leika_key = '123' WHERE id = 'hundesteuer'")).await;
    assert!(format!("{:?}", bad.unwrap_err()).contains("service_leika_key_check"));
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_files_name_file_line_and_field_and_write_nothing() {
    let Some(env) = TestEnv::new(&["espelkamp"]).await else { return };
    let file = env.dir.path().join("inhalt.yaml");
    std::fs::write(
        &file,
        "categories:\n  - { id: bauen, title: Bauen }\nservices:\n  - id: gut\n    title: Gut\n    category: bauen\n  - id: schlecht\n    title: Schlecht\n    category: fehlt\n    trustLevel: mittel\n",
    )
    .unwrap();
    let (ok, _, err) = run(&env, &["content", "import", "--tenant", "espelkamp", file.to_str().unwrap()]);
    assert!(!ok);
    let shown = file.display().to_string();
    assert!(err.contains(&format!("{shown}:7: service \"schlecht\": field category: no category \"fehlt\"")), "{err}");
    assert!(err.contains("field trustLevel: \"mittel\" is not one of"), "{err}");
    assert!(err.contains("tenant espelkamp"), "{err}");
    assert_eq!(count(&env, "espelkamp", "SELECT count(*) FROM category").await, 0, "partial import");
    assert_eq!(count(&env, "espelkamp", "SELECT count(*) FROM service").await, 0, "partial import");

    // CSV: errors name the record; a good file imports and may refer to existing categories.
    std::fs::write(&file, "categories:\n  - { id: bauen, title: Bauen }\n").unwrap();
    assert!(run(&env, &["content", "import", "--tenant", "espelkamp", file.to_str().unwrap()]).0);
    let csv = env.dir.path().join("services.csv");
    std::fs::write(
        &csv,
        "id,title,category,documents,published\nbau,Bauantrag,bauen,Lageplan|Bauzeichnungen,true\nzwei,,bauen,,\n",
    )
    .unwrap();
    let (ok, _, err) = run(&env, &["content", "import", "--tenant", "espelkamp", csv.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("service \"zwei\": field title: must not be empty"), "{err}");
    std::fs::write(&csv, "id,title,category,documents,published\nbau,Bauantrag,bauen,Lageplan|Bauzeichnungen,true\n")
        .unwrap();
    let (ok, _, err) = run(&env, &["content", "import", "--tenant", "espelkamp", csv.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(
        count(&env, "espelkamp", "SELECT count(*) FROM service WHERE published AND cardinality(documents) = 2").await,
        1
    );

    let (ok, _, err) = run(&env, &["content", "import", "--tenant", "nirgendwo", csv.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("no tenant \"nirgendwo\""), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn adopt_copies_the_description_with_its_origin() {
    let Some(env) = TestEnv::new(&["espelkamp", "detmold"]).await else { return };
    assert!(run(&env, &["content", "import", "--tenant", "detmold", "--starter"]).0);
    assert!(run(&env, &["content", "publish", "--tenant", "detmold", "--all"]).0);
    let (ok, _, err) =
        run(&env, &["content", "adopt", "--from", "detmold", "--to", "espelkamp", "--service", "hundeanmeldung"]);
    assert!(ok, "{err}");
    let c = support::connect(&env.url).await;
    let a = &env.tenant("espelkamp").schema;
    let b = &env.tenant("detmold").schema;
    let row = c
        .query_one(
            &format!(
                "SELECT s.origin_tenant, s.origin_service, s.published, s.description = o.description, s.category_id
                 FROM {a}.service s, {b}.service o WHERE s.id = 'hundeanmeldung' AND o.id = s.id"
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("detmold"));
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("hundeanmeldung"));
    assert!(!row.get::<_, bool>(2), "adopted service must start unpublished");
    assert!(row.get::<_, bool>(3));
    assert_eq!(row.get::<_, Option<String>>(4).as_deref(), Some("steuern-und-zoll"));
    let (ok, _, err) = run(&env, &["content", "adopt", "--from", "detmold", "--to", "espelkamp", "--service", "nope"]);
    assert!(!ok);
    assert!(err.contains("tenant detmold: no service \"nope\""), "{err}");
}

#[test]
fn catalogue_lists_the_starter_services() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portalctl"))
        .args(["content", "catalogue", "-o", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = v.as_array().unwrap();
    assert!(list.len() >= 40);
    let gewerbe = list.iter().find(|s| s["id"] == "gewerbeanmeldung").unwrap();
    assert_eq!(gewerbe["externalPortal"], "Wirtschafts-Service-Portal.NRW");
    assert_eq!(gewerbe["competence"], "gemeinde");
    assert_eq!(gewerbe["leikaKey"], "99050012104000");
    let kfz = list.iter().find(|s| s["id"] == "kfz-zulassung").unwrap();
    assert_eq!(
        (&kfz["competence"], &kfz["task"], &kfz["leikaKey"]),
        (&"kreis".into(), &"zulassung".into(), &serde_json::Value::Null)
    );
}
