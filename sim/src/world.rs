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

/// Windows each department has in a county hall of 40 (a department beyond the list: 1). The
/// busy counters — 不动产, 市场监管, 税务 — have several windows; most departments have one.
const WINDOW_WEIGHTS: &[usize] = &[4, 4, 3, 3, 3, 4, 2, 1, 2, 2, 1, 1, 1, 2, 1, 1, 1, 1, 1, 2];

/// One catalogue entry: name, 法定时限 and 承诺时限 (working days; promised 0 = 即办件), whether
/// the promise counts natural days, and the statutory fee in fen.
struct CatalogueItem {
    name: &'static str,
    legal: u32,
    promised: u32,
    natural: bool,
    fee_fen: u64,
}

const fn item(name: &'static str, legal: u32, promised: u32) -> CatalogueItem {
    CatalogueItem {
        name,
        legal,
        promised,
        natural: false,
        fee_fen: 0,
    }
}

const fn fee(name: &'static str, legal: u32, promised: u32, fee_fen: u64) -> CatalogueItem {
    CatalogueItem {
        name,
        legal,
        promised,
        natural: false,
        fee_fen,
    }
}

const fn natural(name: &'static str, legal: u32, promised: u32) -> CatalogueItem {
    CatalogueItem {
        name,
        legal,
        promised,
        natural: true,
        fee_fen: 0,
    }
}

/// A county's items by department (the order of [`DEPARTMENTS`]), with the limits a county
/// 政务服务事项清单 typically gives them: statutory limits from the governing regulations,
/// promised limits cut well below them (承诺提速), 即办件 where the hall decides on the spot.
/// Most items are free (收费 only where a statute sets a fee: 不动产登记费, 工本费).
const CATALOGUE: &[&[CatalogueItem]] = &[
    &[
        fee("不动产转移登记", 30, 5, 8000),
        fee("不动产抵押权首次登记", 30, 3, 8000),
        fee("国有建设用地使用权及房屋所有权首次登记", 30, 10, 8000),
        item("不动产变更登记", 30, 3),
        item("不动产注销登记", 30, 1),
        item("不动产登记资料查询", 0, 0),
        item("预告登记", 30, 3),
        fee("不动产权证书补证换证", 30, 5, 1000),
    ],
    &[
        item("个体工商户设立登记", 0, 0),
        item("个体工商户变更登记", 0, 0),
        item("企业设立登记", 15, 1),
        item("企业变更登记", 15, 1),
        item("企业注销登记", 15, 1),
        item("食品经营许可", 20, 5),
        item("药品零售企业许可", 30, 10),
        item("小餐饮登记", 10, 3),
    ],
    &[
        natural("居民身份证申领", 60, 20),
        item("户口迁移登记", 0, 0),
        item("出生登记", 0, 0),
        item("无犯罪记录证明开具", 0, 0),
        item("机动车驾驶证换证", 0, 0),
        item("普通护照签发", 15, 7),
        item("往来港澳通行证签发", 15, 7),
    ],
    &[
        item("社会保障卡申领", 0, 0),
        item("失业保险金申领", 20, 5),
        item("基本养老保险参保登记", 0, 0),
        item("职工退休申请", 20, 10),
        item("就业创业证申领", 0, 0),
        item("工伤认定申请", 60, 20),
    ],
    &[
        item("城乡居民基本医疗保险参保登记", 0, 0),
        item("异地就医备案", 0, 0),
        item("医疗费用手工（零星）报销", 30, 10),
        item("基本医疗保险关系转移接续", 45, 15),
        item("门诊慢特病待遇认定", 20, 10),
    ],
    &[
        item("发票领用", 0, 0),
        item("代开增值税发票", 0, 0),
        item("契税申报", 0, 0),
        item("个人所得税综合所得汇算清缴", 0, 0),
        item("税务登记信息确认", 0, 0),
        item("完税证明开具", 0, 0),
    ],
    &[
        item("建筑工程施工许可证核发", 15, 7),
        item("商品房预售许可", 20, 10),
        item("房屋租赁登记备案", 3, 1),
        item("建设工程消防验收", 15, 10),
        item("建设工程竣工验收备案", 15, 5),
        item("公共租赁住房保障申请", 30, 15),
    ],
    &[
        item("道路货物运输经营许可", 20, 10),
        item("出租汽车驾驶员从业资格注册", 20, 5),
        item("道路运输证配发", 0, 0),
        item("超限运输车辆行驶公路许可", 20, 5),
        item("机动车维修经营备案", 5, 1),
    ],
    &[
        item("医疗机构执业登记", 45, 20),
        item("公共场所卫生许可", 20, 5),
        item("出生医学证明补发", 0, 0),
        item("护士执业注册", 20, 5),
        item("饮用水供水单位卫生许可", 20, 10),
    ],
    &[
        item("结婚登记", 0, 0),
        item("离婚登记", 30, 30),
        item("最低生活保障申请", 30, 15),
        item("社会团体成立登记", 60, 20),
        item("临时救助申请", 10, 5),
        item("养老机构备案", 5, 1),
    ],
    &[
        item("教师资格认定", 30, 15),
        item("民办学校办学许可", 60, 20),
        item("学籍转接", 0, 0),
        item("校外培训机构审批", 30, 15),
        item("中小学教师资格证补发", 20, 5),
    ],
    &[
        item("建设用地规划许可证核发", 20, 10),
        item("建设工程规划许可证核发", 20, 10),
        item("乡村建设规划许可证核发", 20, 10),
        item("临时用地审批", 20, 10),
        item("地质灾害危险性评估备案", 5, 1),
    ],
    &[
        item("建设项目环境影响报告表审批", 30, 15),
        item("排污许可证核发", 30, 15),
        item("建设项目环境影响登记表备案", 0, 0),
        item("危险废物经营许可", 20, 10),
        item("辐射安全许可证核发", 20, 10),
    ],
    &[
        item("住房公积金提取", 0, 0),
        item("住房公积金个人贷款", 15, 10),
        item("住房公积金缴存登记", 0, 0),
        item("住房公积金异地转移接续", 0, 0),
        item("住房公积金贷款提前还款", 0, 0),
    ],
    &[
        item("农药经营许可", 20, 10),
        item("兽药经营许可", 20, 10),
        item("农村宅基地用地审批", 30, 15),
        item("农作物种子生产经营许可", 20, 10),
        item("动物防疫条件合格证核发", 20, 10),
    ],
    &[
        item("取水许可", 45, 20),
        item("河道管理范围内建设项目工程建设方案审批", 20, 15),
        item("生产建设项目水土保持方案审批", 20, 10),
        item("洪水影响评价审批", 20, 15),
        item("农村集体经济组织修建水库审批", 20, 15),
    ],
    &[
        item("娱乐场所经营许可", 20, 10),
        item("营业性演出许可", 20, 5),
        item("旅行社设立许可", 20, 10),
        item("互联网上网服务营业场所经营许可", 20, 10),
        item("文物保护单位修缮审批", 20, 15),
    ],
    &[
        item("危险化学品经营许可", 30, 15),
        item("烟花爆竹经营（零售）许可", 20, 10),
        item("生产经营单位生产安全事故应急预案备案", 0, 0),
        item("非煤矿山安全生产许可", 45, 20),
        item("特种作业操作证复审", 20, 5),
    ],
    &[
        item("法律援助申请", 7, 3),
        item("基层法律服务工作者执业核准", 20, 10),
        item("人民调解申请", 0, 0),
        item("律师执业证补发", 20, 5),
        item("公证机构执业证书换发", 20, 10),
    ],
    &[
        item("退役军人优待证申领", 0, 0),
        item("退役士兵自主就业一次性经济补助金发放", 30, 10),
        item("伤残抚恤关系转移", 60, 20),
        item("退役军人信息采集", 0, 0),
        item("烈士褒扬金发放", 30, 15),
    ],
];

/// Surnames in rough order of frequency (the first ones repeat most, as in any hall).
const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "罗", "高", "郑", "梁", "谢", "宋", "唐", "许", "韩", "邓", "冯", "曹", "彭", "曾",
    "肖", "田", "董", "潘", "袁", "蔡", "蒋", "余", "于", "杜", "叶", "程", "魏", "苏", "吕", "丁",
];

/// Characters of given names.
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀", "霞", "平", "刚", "桂", "英", "华", "建", "文", "辉", "玲", "丹", "萍", "鹏", "宇",
    "浩", "婷", "雪", "琳", "晨", "欣", "思", "佳", "子", "梓", "志", "海", "春", "红", "玉", "兰",
];

/// The `n`-th person's name: varied (surnames weighted to the common ones, one- and
/// two-character given names), deterministic.
fn person_name(n: usize) -> String {
    let h = (n as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let pick = |shift: u32, len: usize| ((h >> shift) % len as u64) as usize;
    // Squaring a uniform pick favours the first (most frequent) surnames.
    let s = pick(8, 1000);
    let surname = SURNAMES[s * s * SURNAMES.len() / 1_000_000];
    let first = GIVEN[pick(24, GIVEN.len())];
    if pick(40, 10) < 3 {
        format!("{surname}{first}")
    } else {
        format!("{surname}{first}{}", GIVEN[pick(48, GIVEN.len())])
    }
}

/// The department of each of `windows` windows of a centre with `departments` departments:
/// every department at least one, the rest by [`WINDOW_WEIGHTS`], in department order.
fn window_departments(departments: usize, windows: usize) -> Vec<usize> {
    let weight = |d: usize| WINDOW_WEIGHTS.get(d).copied().unwrap_or(1);
    let total: usize = (0..departments).map(weight).sum();
    let extra = windows.saturating_sub(departments);
    let spare = total.saturating_sub(departments).max(1);
    // 1 + a share of the extra windows proportional to (weight − 1); remainders largest first.
    let mut counts: Vec<usize> = (0..departments)
        .map(|d| 1 + extra * (weight(d) - 1) / spare)
        .collect();
    let mut order: Vec<usize> = (0..departments).collect();
    order.sort_by_key(|&d| std::cmp::Reverse((extra * (weight(d) - 1)) % spare));
    let given: usize = counts.iter().sum();
    for &d in order.iter().cycle().take(windows.saturating_sub(given)) {
        counts[d] += 1;
    }
    counts
        .iter()
        .enumerate()
        .flat_map(|(d, &n)| std::iter::repeat_n(d, n))
        .collect()
}

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
    /// One county hall (平江-sized): 20 departments, 40 windows, about 480 cases a day (a dozen
    /// visitors per window, so the counters are busy in the morning and afternoon peaks).
    pub fn hall() -> Profile {
        Profile {
            centres: vec![CentreSpec {
                center_id: "PJ-ZWFW".into(),
                name: "平江县政务服务中心".into(),
                region: "430626".into(),
                departments: 20,
                windows: 40,
            }],
            cases_per_day: 480,
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
    /// 事项名称, from the county catalogue.
    pub name: String,
    /// 法定时限 (working days; 0 for a 即办件).
    pub legal: u32,
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
            // A department past the catalogue's (a city's 分局) offers its parent's items.
            let entries = CATALOGUE[d % CATALOGUE.len()];
            for (k, entry) in entries.iter().enumerate() {
                let instant = entry.promised == 0;
                let promised = entry.promised;
                let natural = entry.natural;
                let stage_days = (!instant && !natural && promised >= 3 && rng.percent(60))
                    .then(|| [promised.div_ceil(3).max(1); 3]);
                list.push(items.len());
                items.push(SimItem {
                    code: format!("{}-{:03}", department_code(d), k + 1),
                    name: entry.name.to_string(),
                    legal: entry.legal,
                    department: d,
                    instant,
                    promised,
                    natural,
                    stage_days,
                    fee_fen: entry.fee_fen,
                    delegated: rng.percent(50),
                });
            }
        }
        let mut windows = Vec::new();
        let mut back_office = Vec::new();
        for (c, spec) in profile.centres.iter().enumerate() {
            let deps = spec.departments.max(1);
            // Each department's windows side by side, numbered in a row (1–4号窗 不动产, …),
            // as halls arrange their counters.
            for (w, department) in window_departments(deps, spec.windows.max(deps))
                .into_iter()
                .enumerate()
            {
                windows.push(SimWindow {
                    id: format!("{}-W{:03}", spec.center_id, w + 1),
                    centre: c,
                    department,
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
        for it in &self.items {
            // A city's 分局 offers its parent department's items under its own name.
            let name = if it.department < DEPARTMENTS.len() {
                it.name.clone()
            } else {
                format!("{}（{}）", it.name, department_name(it.department))
            };
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
                it.legal.max(it.promised + 1),
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
        let name = person_name;
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
                    name(10_000 + c * 100 + d),
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

    /// `sources.csv` (SPEC §4 v1.1): the feeds the simulator's events name — each centre's
    /// queue system and approval system, and the first centre's bridge that reports a
    /// department's cases only once completed (`gen.rs`).
    pub fn sources_csv(&self) -> String {
        let mut out = String::from("source,name,center_id,region,vendor,transport\n");
        for (i, c) in self.centres.iter().enumerate() {
            let (id, name, region) = (&c.center_id, &c.name, &c.region);
            let _ = writeln!(out, "{id}:qms,{name}排队叫号系统,{id},{region},模拟,http");
            let _ = writeln!(out, "{id}:approval,{name}审批系统,{id},{region},模拟,http");
            if i == 0 {
                let dept = department_code(2);
                let _ = writeln!(
                    out,
                    "{id}:{dept}-bridge,{name}{}前置机（办结后上报）,{id},{region},模拟,http",
                    department_name(2)
                );
            }
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
        std::fs::write(dir.join("sources.csv"), self.sources_csv())?;
        std::fs::write(dir.join("centers.csv"), self.centers_csv())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hall_has_its_departments_windows_side_by_side_and_weighted() {
        let deps = window_departments(20, 40);
        assert_eq!(deps.len(), 40);
        // Side by side: the department never goes back.
        assert!(deps.windows(2).all(|w| w[0] <= w[1]), "{deps:?}");
        // 不动产 (weights 4) has four windows, 交通运输局 one.
        assert_eq!(deps.iter().filter(|&&d| d == 0).count(), 4);
        assert_eq!(deps.iter().filter(|&&d| d == 7).count(), 1);
        // A city centre: 50 departments, 137 windows, each department at least one.
        let city = window_departments(50, 137);
        assert_eq!(city.len(), 137);
        assert!((0..50).all(|d| city.contains(&d)));
    }

    #[test]
    fn names_vary_and_items_are_the_catalogue() {
        let world = World::new(&Profile::hall(), 1);
        let staff = world.staff_csv();
        let names: std::collections::HashSet<&str> = staff
            .lines()
            .skip(1)
            .filter_map(|l| l.split(',').nth(1))
            .collect();
        // 60 people (40 at windows, 20 back office): hardly any two share a name.
        assert!(names.len() >= 55, "{names:?}");
        let items = world.items_csv();
        assert!(
            items.contains(",不动产转移登记,D01,promised,30,working,5,"),
            "{items}"
        );
        assert!(
            items.contains(",个体工商户设立登记,D02,instant,"),
            "{items}"
        );
        assert!(
            items.contains(",城乡居民基本医疗保险参保登记,D05,instant,"),
            "{items}"
        );
    }
}
