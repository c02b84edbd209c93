//! The dashboards: web pages built into the binary, and the directory of names they show.
//!
//! The halls' networks are closed, so nothing is fetched from elsewhere: the HTML, CSS and
//! JavaScript under `dashboard-api/web/` are compiled in (`include_bytes!`) and served under
//! `/ui/`. The pages are plain ES modules over the public API (`/api/v1/…`, the live WebSocket);
//! they hold no data of their own and are locked down by a Content-Security-Policy that allows
//! only this origin.
//!
//! | path | page | roles |
//! |---|---|---|
//! | `/ui/` | 登录 | everyone |
//! | `/ui/leader` | 大屏 | leader, inspector, admin |
//! | `/ui/inspector` | 督办台 | inspector, admin (read only) |
//! | `/ui/auditor` | 查询与绩效 | leader, inspector, auditor, admin |
//!
//! Which page a role may open is decided by the API, not the page: a page only hides what the
//! API would refuse anyway.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::Api;

/// One built-in file: its name under `/ui/assets/`, its type, its bytes.
struct Asset {
    name: &'static str,
    mime: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $mime:expr) => {
        Asset {
            name: $name,
            mime: $mime,
            bytes: include_bytes!(concat!("../web/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("app.css", CSS),
    asset!("common.js", JS),
    asset!("login.js", JS),
    asset!("leader.js", JS),
    asset!("inspector.js", JS),
    asset!("auditor.js", JS),
    asset!("timeline.js", JS),
    asset!("evidence.js", JS),
    asset!("charts.js", JS),
    asset!("sources.js", JS),
    // Apache ECharts (scripts/update-echarts.sh), with its licence, notice and the licence of
    // the d3 code it embeds, served beside it.
    asset!("echarts.min.js", JS),
    asset!("echarts-LICENSE.txt", TEXT),
    asset!("echarts-NOTICE.txt", TEXT),
    asset!("echarts-LICENSE-d3.txt", TEXT),
    asset!("leader.css", CSS),
];

/// The pages, by path under `/ui/`.
static PAGES: &[(&str, &[u8])] = &[
    ("", include_bytes!("../web/login.html")),
    ("leader", include_bytes!("../web/leader.html")),
    ("inspector", include_bytes!("../web/inspector.html")),
    ("auditor", include_bytes!("../web/auditor.html")),
    ("sources", include_bytes!("../web/sources.html")),
];

/// Only this origin, no inline script or style, no framing by other sites.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'";

fn served(mime: &'static str, bytes: &'static [u8]) -> Response {
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    // Assets change with the binary: always revalidate (they are small; the halls' screens
    // run for months, and a stale script after an upgrade would be worse than a re-fetch).
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// `GET /ui/`: the login page.
pub(crate) async fn login_page() -> Response {
    served(HTML, PAGES[0].1)
}

/// `GET /ui/{page}`; an unknown page is a 404 that links to the login page.
pub(crate) async fn page(Path(name): Path<String>) -> Response {
    match PAGES.iter().find(|(p, _)| *p == name) {
        Some((_, bytes)) => served(HTML, bytes),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, HTML)],
            "<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><title>页面不存在</title>\
             <p>页面不存在。<a href=\"/ui/\">返回登录</a></p></html>",
        )
            .into_response(),
    }
}

/// `GET /ui/assets/{name}`.
pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => served(a.mime, a.bytes),
        None => ApiError::not_found(format!("no asset {name:?}")).into_response(),
    }
}

/// `GET /`: a browser goes to the login page; a program gets the JSON index.
pub(crate) async fn index(headers: HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if wants_html {
        Redirect::to("/ui/").into_response()
    } else {
        crate::rest::index().await.into_response()
    }
}

/// Names the dashboards show instead of codes, from the reference directory.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    /// The reference itself, for the jurisdiction check at ingest (`rules::check_listed`).
    reference: Option<Arc<rules::Reference>>,
    centers: Vec<CenterEntry>,
    windows: Vec<WindowEntry>,
    staff: Vec<StaffEntry>,
    departments: BTreeMap<String, String>,
    items: BTreeMap<String, String>,
    sources: Vec<SourceEntry>,
    /// The format endpoints' code tables and `sources.csv`.
    formats: Arc<crate::formats::FormatSettings>,
}

/// A source system of `sources.csv` (SPEC §4, §10), as the binary read it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SourceEntry {
    /// `source`, as events carry it.
    pub source: String,
    /// Display name (empty: unnamed).
    pub name: String,
    /// Centre of its records (may be empty).
    pub center_id: String,
    /// Region (may be empty: then its centre's, if the reference knows it).
    pub region: String,
    /// Vendor.
    pub vendor: String,
    /// Transport.
    pub transport: String,
}

#[derive(Debug, Clone, Serialize)]
struct CenterEntry {
    center_id: String,
    name: String,
    region: String,
}

#[derive(Debug, Clone, Serialize)]
struct WindowEntry {
    window_id: String,
    center_id: String,
    region: String,
    department: String,
}

#[derive(Debug, Clone)]
struct StaffEntry {
    staff_id: String,
    name: String,
    /// The region of the staff member's home centre (their window's, or for back-office staff
    /// the centre `staff.csv` or their department places them in); a member the reference
    /// cannot place is named to no one (no jurisdiction can be checked).
    region: Option<String>,
}

impl Directory {
    /// The unit a jurisdiction stands for, as the trail names it: the one centre of exactly
    /// that region when the reference has it (平江县政务服务中心), else 辖区 and the code.
    pub fn unit_name(&self, region: &str) -> String {
        let mut exact = self.centers.iter().filter(|c| c.region == region);
        match (exact.next(), exact.next()) {
            (Some(c), None) => c.name.clone(),
            _ if region.is_empty() => "全省".to_string(),
            _ => format!("辖区 {region}"),
        }
    }

    /// The directory with `sources.csv`'s rows; a row without a region takes its centre's.
    pub fn with_sources(mut self, sources: Vec<SourceEntry>) -> Directory {
        self.sources = sources
            .into_iter()
            .map(|mut s| {
                if s.region.is_empty() {
                    if let Some(c) = self.centers.iter().find(|c| c.center_id == s.center_id) {
                        s.region = c.region.clone();
                    }
                }
                s
            })
            .collect();
        self
    }

    /// The directory with the code tables and `sources.csv` the format endpoints
    /// (`/api/v1/ingest/…`) map records with (without: the default code tables).
    pub fn with_formats(mut self, formats: crate::formats::FormatSettings) -> Directory {
        self.formats = Arc::new(formats);
        self
    }

    pub(crate) fn formats(&self) -> Arc<crate::formats::FormatSettings> {
        self.formats.clone()
    }

    /// The listed sources of a jurisdiction (region prefix): those whose region it covers.
    pub fn sources_in<'a>(
        &'a self,
        region_prefix: &'a str,
    ) -> impl Iterator<Item = &'a SourceEntry> + 'a {
        self.sources
            .iter()
            .filter(move |s| !s.region.is_empty() && s.region.starts_with(region_prefix))
    }

    /// A listed source by name.
    pub fn source(&self, source: &str) -> Option<&SourceEntry> {
        self.sources.iter().find(|s| s.source == source)
    }

    /// The reference data it was made from, if any.
    pub fn reference(&self) -> Option<&Arc<rules::Reference>> {
        self.reference.as_ref()
    }

    /// The directory of a reference: centres (named by `centers.csv`, else by id) and windows
    /// with their regions, staff of windows, department and item names.
    pub fn from_reference(reference: &Arc<rules::Reference>) -> Directory {
        let r = &**reference;
        let reference = Some(Arc::clone(reference));
        let mut windows: Vec<WindowEntry> = r
            .windows
            .values()
            .map(|w| WindowEntry {
                window_id: w.window_id.clone(),
                center_id: w.center_id.clone(),
                region: w.region.clone(),
                department: w.department.clone(),
            })
            .collect();
        windows.sort_by(|a, b| a.window_id.cmp(&b.window_id));
        let mut centers: BTreeMap<&str, CenterEntry> = BTreeMap::new();
        for w in &windows {
            centers
                .entry(w.center_id.as_str())
                .or_insert_with(|| CenterEntry {
                    center_id: w.center_id.clone(),
                    name: r
                        .center_names
                        .get(&w.center_id)
                        .cloned()
                        .unwrap_or_else(|| w.center_id.clone()),
                    region: w.region.clone(),
                });
        }
        let mut staff: Vec<StaffEntry> = r
            .staff
            .values()
            .map(|s| StaffEntry {
                staff_id: s.staff_id.clone(),
                name: s.name.clone(),
                region: s
                    .center_id
                    .as_deref()
                    .and_then(|c| r.center_region(c))
                    .map(str::to_string),
            })
            .collect();
        staff.sort_by(|a, b| a.staff_id.cmp(&b.staff_id));
        let mut departments: BTreeMap<String, String> = r
            .department_names
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for w in &windows {
            departments
                .entry(w.department.clone())
                .or_insert_with(|| w.department.clone());
        }
        Directory {
            reference,
            centers: centers.into_values().collect(),
            windows,
            staff,
            departments,
            items: r
                .items()
                .iter()
                .map(|i| (i.code.clone(), i.name.clone()))
                .collect(),
            sources: Vec::new(),
            formats: Arc::default(),
        }
    }

    /// A centre's name (`centers.csv`, else its id), if the reference lists the centre.
    pub fn center_name(&self, center_id: &str) -> Option<String> {
        self.centers
            .iter()
            .find(|c| c.center_id == center_id)
            .map(|c| c.name.clone())
    }

    /// A department's name, if the reference names it.
    pub fn department_name(&self, department: &str) -> Option<String> {
        self.departments.get(department).cloned()
    }

    /// A staff member's name, if the reference lists them.
    pub fn staff_name(&self, staff_id: &str) -> Option<String> {
        self.staff
            .binary_search_by(|s| s.staff_id.as_str().cmp(staff_id))
            .ok()
            .map(|i| self.staff[i].name.clone())
    }

    /// An item's name, if the catalogue lists it.
    pub fn item_name(&self, code: &str) -> Option<String> {
        self.items.get(code).cloned()
    }

    /// What `who` may see of it.
    fn scoped(&self, who: &Principal) -> Value {
        let region = &who.region;
        let windows: Vec<&WindowEntry> = self
            .windows
            .iter()
            .filter(|w| region.covers(&w.region))
            .collect();
        let centers: Vec<&CenterEntry> = self
            .centers
            .iter()
            .filter(|c| windows.iter().any(|w| w.center_id == c.center_id))
            .collect();
        let staff: BTreeMap<&str, &str> = self
            .staff
            .iter()
            .filter(|s| s.region.as_deref().is_some_and(|r| region.covers(r)))
            .map(|s| (s.staff_id.as_str(), s.name.as_str()))
            .collect();
        let rules: BTreeMap<&str, &str> = rules::Rule::ALL
            .iter()
            .map(|r| (r.as_str(), r.zh()))
            .collect();
        let levels: BTreeMap<&str, &str> = rules::Level::ALL
            .iter()
            .map(|l| (l.as_str(), l.zh()))
            .collect();
        json!({
            "centers": centers,
            "windows": windows,
            "staff": staff,
            "departments": self.departments,
            "items": self.items,
            "rules": rules,
            "levels": levels,
        })
    }
}

/// A window as the halls say it: "3号窗" from `PJ-ZWFW-W003` (the number its id ends with), the
/// id itself when it ends with none. The pages' `names.window` does the same.
pub fn window_label(window_id: &str) -> String {
    let digits = window_id.len()
        - window_id
            .bytes()
            .rev()
            .take_while(u8::is_ascii_digit)
            .count();
    match window_id[digits..].parse::<u64>() {
        Ok(n) => format!("{n}号窗"),
        Err(_) => window_id.to_string(),
    }
}

/// `GET /api/v1/directory`: the names of the caller's jurisdiction (centres, windows, staff of
/// windows) and of the catalogue (departments, items, rules, levels).
pub(crate) async fn directory(State(api): State<Api>, who: Principal) -> Json<Value> {
    let mut answer = api.directory().scoped(&who);
    let policy = &api.0.config.policy;
    // What the 大屏 measures against: 590's targets, and the hall's hours (its 午休).
    answer["targets"] = json!({
        "on_time": 1.0,
        "on_site": policy.on_site_target,
    });
    answer["office_hours"] = json!(policy.office_hours);
    Json(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echarts_is_built_in_with_its_licence_and_evaluates_no_strings() {
        let find = |name: &str| {
            ASSETS
                .iter()
                .find(|a| a.name == name)
                .map(|a| std::str::from_utf8(a.bytes).expect("UTF-8"))
                .unwrap_or_else(|| panic!("{name} is not served"))
        };
        let echarts = find("echarts.min.js");
        // The pinned release (scripts/update-echarts.sh), and nothing the CSP would refuse.
        assert!(echarts.contains("\"6.1.0\""), "not ECharts 6.1.0");
        assert!(!echarts.contains("new Function") && !echarts.contains("eval("));
        assert!(find("echarts-LICENSE.txt").contains("Apache License"));
        assert!(find("echarts-NOTICE.txt").contains("Apache ECharts"));
        assert!(find("echarts-LICENSE-d3.txt").contains("Mike Bostock"));
    }

    #[test]
    fn every_asset_and_page_is_served_with_its_type_and_the_policy() {
        for a in ASSETS {
            assert!(!a.bytes.is_empty(), "{} is empty", a.name);
            let expected = match a.name.rsplit('.').next() {
                Some("css") => CSS,
                Some("txt") => TEXT,
                _ => JS,
            };
            assert_eq!(a.mime, expected, "{}", a.name);
        }
        for (name, bytes) in PAGES {
            let text = std::str::from_utf8(bytes).expect("pages are UTF-8");
            assert!(
                text.contains("lang=\"zh-CN\""),
                "page {name:?} is not zh-CN"
            );
            // Nothing from elsewhere: the halls' networks are closed.
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "{name:?}"
            );
            // Every asset a page names exists.
            for part in text.split("/ui/assets/").skip(1) {
                let asset = part.split('"').next().unwrap_or_default();
                assert!(
                    ASSETS.iter().any(|a| a.name == asset),
                    "page {name:?} names missing asset {asset:?}"
                );
            }
        }
    }
}
