//! The simulated world: centres, departments, windows, staff and the item catalogue, written
//! out as a reference directory (SPEC §4).

use std::fmt::Write as _;

use rules::synth::Rng;
use rules::ReferenceFiles;

/// Real department names of a county or city 政务服务中心 (the seeds' halls have these).
const DEPARTMENTS: &[&str] = &[
    "不动产登记中心",
    "市场监管局",
    "公安局",
    "人社局",
    "医保局",
    "税务局",
    "住建局",
    "交通运输局",
    "卫健委",
    "民政局",
    "教育局",
    "自然资源局",
    "生态环境局",
    "公积金中心",
    "农业农村局",
    "水利局",
    "文旅局",
    "应急管理局",
    "司法局",
    "退役军人事务局",
];

/// Kinds of item names, combined with the department name.
const ITEM_VERBS: &[&str] = &[
    "许可", "登记", "变更", "注销", "备案", "审批", "核准", "证明", "年检", "换证",
];

/// How big the simulated area is.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Centres: (centre id, region code, departments, windows, items).
    pub centres: Vec<CentreSpec>,
    /// New cases per working day, over all centres (split by window count).
    pub cases_per_day: u32,
}

/// One centre's size.
#[derive(Debug, Clone)]
pub struct CentreSpec {
    /// Centre id.
    pub center_id: String,
    /// Its name on the dashboards (`centers.csv`).
    pub name: String,
    /// GB/T 2260 code of its area.
    pub region: String,
    /// Departments with windows in the hall.
    pub departments: usize,
    /// Windows.
    pub windows: usize,
}

impl Profile {
    /// One county hall (平江-sized): 20 departments, 40 windows, about 250 cases a day.
    pub fn hall() -> Profile {
        Profile {
            centres: vec![CentreSpec {
                center_id: "PJ-ZWFW".into(),
                name: "平江县政务服务中心".into(),
                region: "430626".into(),
                departments: 20,
                windows: 40,
            }],
            cases_per_day: 250,
        }
    }

    /// A city (德阳-sized, 1.47M cases a year ≈ 6,000 a working day): a city centre of 玉林's
    /// size (50 departments, 137 windows) and six district and county centres.
    pub fn city() -> Profile {
        let mut centres = vec![CentreSpec {
            center_id: "DY-SZWFW".into(),
            name: "德阳市政务服务中心".into(),
            region: "510600".into(),
            departments: 50,
            windows: 137,
        }];
        for (id, region, name) in [
            ("DY-JY", "510603", "旌阳区政务服务中心"),
            ("DY-LJ", "510604", "罗江区政务服务中心"),
            ("DY-ZJ", "510623", "中江县政务服务中心"),
            ("DY-GH", "510681", "广汉市政务服务中心"),
            ("DY-SF", "510682", "什邡市政务服务中心"),
            ("DY-MZ", "510683", "绵竹市政务服务中心"),
        ] {
            centres.push(CentreSpec {
                center_id: id.into(),
                name: name.into(),
                region: region.into(),
                departments: 20,
                windows: 40,
            });
        }
        Profile {
            centres,
            cases_per_day: 6000,
        }
    }

    /// By name: `hall` or `city`.
    pub fn named(name: &str) -> Option<Profile> {
        match name {
            "hall" => Some(Profile::hall()),
            "city" => Some(Profile::city()),
            _ => None,
        }
    }
}

/// A catalogue item as the simulator uses it.
#[derive(Debug, Clone)]
pub struct SimItem {
    /// 事项编码.
    pub code: String,
    /// Department index.
    pub department: usize,
    /// 即办件 (promised limit 0).
    pub instant: bool,
    /// Promised days.
    pub promised: u32,
    /// Promised unit is natural days.
    pub natural: bool,
    /// Stage limits (working days), when the item has them.
    pub stage_days: Option<[u32; 3]>,
    /// Statutory fee in fen (0 = no fee charged).
    pub fee_fen: u64,
    /// Review and approval are delegated to the window.
    pub delegated: bool,
}

/// A window and who sits at it.
#[derive(Debug, Clone)]
pub struct SimWindow {
    /// Window id.
    pub id: String,
    /// Centre index.
    pub centre: usize,
    /// Department index.
    pub department: usize,
    /// The staff member at this window (in the hall).
    pub staff: String,
}

/// The whole simulated area.
#[derive(Debug, Clone)]
pub struct World {
    /// Centres.
    pub centres: Vec<CentreSpec>,
    /// The shared item catalogue.
    pub items: Vec<SimItem>,
    /// Items of each department.
    pub items_of: Vec<Vec<usize>>,
    /// Windows of every centre.
    pub windows: Vec<SimWindow>,
    /// Back-office staff id of (centre, department).
    pub back_office: Vec<Vec<String>>,
    /// New cases per working day.
    pub cases_per_day: u32,
}

/// Department code of index `d`.
pub fn department_code(d: usize) -> String {
    format!("D{:02}", d + 1)
}

fn department_name(d: usize) -> String {
    match DEPARTMENTS.get(d) {
        Some(name) => (*name).to_string(),
        None => format!(
            "{}{}分局",
            DEPARTMENTS[d % DEPARTMENTS.len()],
            d / DEPARTMENTS.len()
        ),
    }
}

impl World {
    /// Build the world of `profile`, deterministically from `seed`. The catalogue has about ten
    /// items per department (玉林: 507 items over 50 departments).
    pub fn new(profile: &Profile, seed: u64) -> World {
        let mut rng = Rng::new(seed ^ 0x5157_4f52_4c44);
        let departments = profile
            .centres
            .iter()
            .map(|c| c.departments)
            .max()
            .unwrap_or(1)
            .max(1);
        let mut items = Vec::new();
        let mut items_of = vec![Vec::new(); departments];
        for (d, list) in items_of.iter_mut().enumerate() {
            let n = 8 + rng.below(5) as usize;
            for k in 0..n {
                let instant = rng.percent(25);
                let promised: u32 = if instant {
                    0
                } else {
                    [1, 3, 5, 5, 7, 10, 15, 20][rng.below(8) as usize]
                };
                let natural = !instant && rng.percent(15);
                let stage_days = (!instant && !natural && promised >= 3 && rng.percent(60))
                    .then(|| [promised.div_ceil(3).max(1); 3]);
                let fee_fen = if rng.percent(35) {
                    [1000, 2000, 5000, 8000, 10_000][rng.below(5) as usize]
                } else {
                    0
                };
                list.push(items.len());
                items.push(SimItem {
                    code: format!("{}-{:03}", department_code(d), k + 1),
                    department: d,
                    instant,
                    promised,
                    natural,
                    stage_days,
                    fee_fen,
                    delegated: rng.percent(50),
                });
            }
        }
        let mut windows = Vec::new();
        let mut back_office = Vec::new();
        for (c, spec) in profile.centres.iter().enumerate() {
            let deps = spec.departments.max(1);
            for w in 0..spec.windows.max(deps) {
                windows.push(SimWindow {
                    id: format!("{}-W{:03}", spec.center_id, w + 1),
                    centre: c,
                    department: w % deps,
                    staff: format!("{}-S{:03}", spec.center_id, w + 1),
                });
            }
            back_office.push(
                (0..deps)
                    .map(|d| format!("{}-B{:02}", spec.center_id, d + 1))
                    .collect(),
            );
        }
        World {
            centres: profile.centres.clone(),
            items,
            items_of,
            windows,
            back_office,
            cases_per_day: profile.cases_per_day,
        }
    }

    /// The reference directory's files (no `policy.toml`: the ground truth assumes the default
    /// policy).
    pub fn reference_files(&self) -> ReferenceFiles {
        ReferenceFiles {
            items: Some(("items.csv".into(), self.items_csv())),
            windows: Some(("windows.csv".into(), self.windows_csv())),
            staff: Some(("staff.csv".into(), self.staff_csv())),
            calendar: Vec::new(),
            departments: Some(("departments.csv".into(), self.departments_csv())),
            centers: Some(("centers.csv".into(), self.centers_csv())),
        }
    }

    /// `items.csv`.
    pub fn items_csv(&self) -> String {
        let mut out = String::from("item_code,item_name,department,case_type,legal_days,legal_unit,promised_days,promised_unit,stage_undertake_days,stage_review_days,stage_approve_days,in_hall,channels,fee_fen,window_authority\n");
        for (i, it) in self.items.iter().enumerate() {
            let name = format!(
                "{}{}{}",
                department_name(it.department),
                ITEM_VERBS[i % ITEM_VERBS.len()],
                i / ITEM_VERBS.len() + 1
            );
            let (kind, promised, unit) = if it.instant {
                ("instant", String::new(), "")
            } else {
                (
                    "promised",
                    it.promised.to_string(),
                    if it.natural { "natural" } else { "working" },
                )
            };
            let stages = it.stage_days.map_or_else(
                || ",,".to_string(),
                |s| format!("{},{},{}", s[0], s[1], s[2]),
            );
            let _ = writeln!(
                out,
                "{},{name},{},{kind},{},working,{promised},{unit},{stages},true,hall;online,{},{}",
                it.code,
                department_code(it.department),
                it.promised * 2 + 5,
                it.fee_fen,
                if it.delegated {
                    "accept;review;approve"
                } else {
                    "accept"
                },
            );
        }
        out
    }

    /// `windows.csv`.
    pub fn windows_csv(&self) -> String {
        let mut out = String::from("window_id,center_id,region,department,in_hall\n");
        for w in &self.windows {
            let c = &self.centres[w.centre];
            let _ = writeln!(
                out,
                "{},{},{},{},true",
                w.id,
                c.center_id,
                c.region,
                department_code(w.department)
            );
        }
        out
    }

    /// `staff.csv`: one member per window (in the hall) and one back-office member per
    /// department and centre (审批科室, not in the hall), whose `center_id` says which centre's
    /// department they work for (departments share codes across the city's centres).
    pub fn staff_csv(&self) -> String {
        const SURNAMES: &[&str] = &["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "周", "吴"];
        const GIVEN: &[&str] = &["伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "军"];
        let name = |n: usize| {
            format!(
                "{}{}",
                SURNAMES[n % SURNAMES.len()],
                GIVEN[(n / SURNAMES.len()) % GIVEN.len()]
            )
        };
        let mut out = String::from("staff_id,name,department,window_id,in_hall,center_id\n");
        for (n, w) in self.windows.iter().enumerate() {
            let _ = writeln!(
                out,
                "{},{},{},{},true,",
                w.staff,
                name(n),
                department_code(w.department),
                w.id
            );
        }
        for (c, list) in self.back_office.iter().enumerate() {
            for (d, id) in list.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{id},{},{},,false,{}",
                    name(c * 31 + d + 7),
                    department_code(d),
                    self.centres[c].center_id
                );
            }
        }
        out
    }

    /// `departments.csv`: the departments' names, for dashboards.
    pub fn departments_csv(&self) -> String {
        let count = self.items_of.len();
        let mut out = String::from("department,name\n");
        for d in 0..count {
            let _ = writeln!(out, "{},{}", department_code(d), department_name(d));
        }
        out
    }

    /// `centers.csv`: the centres' names, for dashboards.
    pub fn centers_csv(&self) -> String {
        let mut out = String::from("center_id,name\n");
        for c in &self.centres {
            let _ = writeln!(out, "{},{}", c.center_id, c.name);
        }
        out
    }

    /// Write the reference directory.
    pub fn write_reference(&self, dir: &std::path::Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("items.csv"), self.items_csv())?;
        std::fs::write(dir.join("windows.csv"), self.windows_csv())?;
        std::fs::write(dir.join("staff.csv"), self.staff_csv())?;
        std::fs::write(dir.join("departments.csv"), self.departments_csv())?;
        std::fs::write(dir.join("centers.csv"), self.centers_csv())
    }
}
