//! The XML of the `gdbs` endpoints: bytes in the encoding the document declares (UTF-8, or GBK
//! and its family GB2312/GB18030, which the Guangdong-lineage systems mostly send) decoded
//! strictly, parsed into a small element tree, and read as table rows.
//!
//! Why strict: a document whose bytes do not match its label (a GBK body declared UTF-8, a
//! UTF-8 body declared GBK, an unknown label) would otherwise turn every name into mojibake
//! that no code table or `staff.csv` matches; refusing it at once, with the reason, lets the
//! sender fix its client instead of filling the dead letters. GBK text that happens to be valid
//! UTF-8 is vanishingly rare for real Chinese text (every character would have to fall on UTF-8
//! sequence boundaries), so a non-ASCII body that is valid UTF-8 but declared GBK is mislabelled.

use encoding_rs::{Encoding, GB18030, GBK, UTF_8};
use quick_xml::events::Event as XmlEvent;
use quick_xml::Reader;

/// A problem with the payload itself: nothing of it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed {
    /// `malformed_xml`, `bad_encoding`, `mislabelled_encoding`, `unknown_block`, `no_records`.
    pub code: &'static str,
    pub message: String,
}

fn malformed(code: &'static str, message: impl Into<String>) -> Malformed {
    Malformed {
        code,
        message: message.into(),
    }
}

/// The `encoding="…"` of an XML declaration, if any (the declaration is ASCII in every
/// encoding these documents use).
fn declared(bytes: &[u8]) -> Option<String> {
    let head = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let head = head.trim_ascii_start();
    let decl = head.strip_prefix(b"<?xml")?;
    let end = decl.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&decl[..end]).ok()?;
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?;
    let rest = rest.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    Some(value[..value.find(quote)?].trim().to_string())
}

/// The encoding a label names, within what the formats use.
fn encoding_of(label: &str, whose: &str) -> Result<&'static Encoding, Malformed> {
    match Encoding::for_label(label.as_bytes()) {
        Some(e) if e == UTF_8 || e == GBK || e == GB18030 => Ok(e),
        _ => Err(malformed(
            "bad_encoding",
            format!("{whose} {label:?} is not an encoding these records come in: send UTF-8, GBK or GB18030"),
        )),
    }
}

/// The text of an XML document: its declared encoding (or the `charset` of its Content-Type),
/// UTF-8 when neither says; a body that is not what it says it is, is refused.
pub(crate) fn decode(bytes: &[u8], charset: Option<&str>) -> Result<String, Malformed> {
    let bom = bytes.starts_with(b"\xEF\xBB\xBF");
    let from_doc = declared(bytes)
        .map(|l| encoding_of(&l, "the document's encoding"))
        .transpose()?;
    let from_header = charset
        .map(|l| encoding_of(l, "the Content-Type charset"))
        .transpose()?;
    let encoding = match (from_header, from_doc) {
        // GBK and GB18030 decode alike (GB18030 is GBK's superset): not a contradiction.
        (Some(h), Some(d)) if (h == UTF_8) != (d == UTF_8) => {
            return Err(malformed(
                "mislabelled_encoding",
                format!(
                    "the Content-Type says charset={} but the document declares encoding=\"{}\"; \
                     make them agree",
                    h.name(),
                    d.name()
                ),
            ))
        }
        (_, Some(d)) => d,
        (Some(h), None) => h,
        (None, None) => UTF_8,
    };
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if encoding == UTF_8 {
        return std::str::from_utf8(body).map(str::to_string).map_err(|e| {
            malformed(
                "bad_encoding",
                format!(
                    "the body is not valid UTF-8 (at byte {}); a GBK document must declare \
                     <?xml version=\"1.0\" encoding=\"GBK\"?>",
                    e.valid_up_to()
                ),
            )
        });
    }
    if bom || (!body.is_ascii() && std::str::from_utf8(body).is_ok()) {
        return Err(malformed(
            "mislabelled_encoding",
            format!(
                "the document declares {} but its bytes are UTF-8; declare encoding=\"UTF-8\" \
                 or send GBK bytes",
                encoding.name()
            ),
        ));
    }
    // GBK's decoder is GB18030's (encoding_rs): either label decodes the four-byte forms.
    GB18030
        .decode_without_bom_handling_and_without_replacement(body)
        .map(|text| text.into_owned())
        .ok_or_else(|| {
            malformed(
                "bad_encoding",
                format!(
                    "the body declares {} but is not valid {}: check the sender's encoding",
                    encoding.name(),
                    encoding.name()
                ),
            )
        })
}

/// One element: name, attributes, its own text, children.
#[derive(Debug, Default, Clone)]
pub(crate) struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn is_leaf(&self) -> bool {
        self.children.is_empty()
    }
}

fn xml_error(e: impl std::fmt::Display, reader: &Reader<&[u8]>) -> Malformed {
    malformed(
        "malformed_xml",
        format!(
            "not well-formed XML near byte {}: {e}",
            reader.buffer_position()
        ),
    )
}

/// Parse a whole document into its root element (local names: a SOAP or namespace prefix is
/// dropped).
pub(crate) fn parse(text: &str) -> Result<Element, Malformed> {
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.expand_empty_elements = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let local = |raw: &[u8]| {
        let name = String::from_utf8_lossy(raw);
        name.rsplit(':').next().unwrap_or_default().to_string()
    };
    loop {
        let event = reader.read_event().map_err(|e| xml_error(e, &reader))?;
        match event {
            XmlEvent::Start(start) => {
                if root.is_some() {
                    return Err(malformed(
                        "malformed_xml",
                        "content after the document's root element",
                    ));
                }
                let mut el = Element {
                    name: local(start.name().as_ref()),
                    ..Element::default()
                };
                for a in start.attributes() {
                    let a = a.map_err(|e| xml_error(e, &reader))?;
                    let value = a.unescape_value().map_err(|e| xml_error(e, &reader))?;
                    el.attrs.push((local(a.key.as_ref()), value.into_owned()));
                }
                stack.push(el);
            }
            XmlEvent::End(_) => {
                // check_end_names: the reader refuses a mismatched end tag itself.
                let Some(mut el) = stack.pop() else {
                    return Err(malformed("malformed_xml", "an end tag without its start"));
                };
                el.text = el.text.trim().to_string();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            XmlEvent::Text(t) => {
                let s = t.xml_content().map_err(|e| xml_error(e, &reader))?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&s),
                    None if s.trim().is_empty() => {}
                    None => {
                        return Err(malformed("malformed_xml", "text outside the root element"))
                    }
                }
            }
            XmlEvent::CData(c) => {
                let s = c.decode().map_err(|e| xml_error(e, &reader))?;
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&s);
                }
            }
            XmlEvent::GeneralRef(r) => {
                let name = r.decode().map_err(|e| xml_error(e, &reader))?;
                let entity = format!("&{name};");
                let s = quick_xml::escape::unescape(&entity).map_err(|e| xml_error(e, &reader))?;
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&s);
                }
            }
            XmlEvent::Eof => break,
            XmlEvent::Empty(_)
            | XmlEvent::Decl(_)
            | XmlEvent::Comment(_)
            | XmlEvent::PI(_)
            | XmlEvent::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(malformed(
            "malformed_xml",
            format!("the document ends inside <{}>", stack[stack.len() - 1].name),
        ));
    }
    root.ok_or_else(|| malformed("malformed_xml", "no root element"))
}

/// A record as the adapter's row (NDJSON object: `_table` and the columns).
pub(crate) type Record = serde_json::Map<String, serde_json::Value>;

fn record(table: &str) -> Record {
    let mut r = Record::new();
    r.insert("_table".into(), table.into());
    r
}

/// The first element of that name in the tree (depth first): a SOAP envelope or a wrapper
/// around the payload is looked through.
fn find<'a>(el: &'a Element, name: &str) -> Option<&'a Element> {
    if el.name.eq_ignore_ascii_case(name) {
        return Some(el);
    }
    el.children.iter().find_map(|c| find(c, name))
}

/// `<ExInfo><standardInfo process="EX_GDBS_SL"><Field FieldName="SBLSH">…</Field>…` (the
/// 数据平台接口's `setDataXmlToFocus` payload, source-formats.md §6): one record per
/// `standardInfo`, its table the `process` attribute, its columns the `Field`s (or, as some
/// senders write them, child elements named after the columns).
pub(crate) fn exinfo(root: &Element) -> Result<Vec<Record>, Malformed> {
    let info = find(root, "ExInfo").ok_or_else(|| {
        malformed(
            "malformed_xml",
            format!(
                "expected an <ExInfo> document, found <{}>; APPROVEDATAINFO form posts go to \
                 /api/v1/ingest/gdbs/approve/{{method}}",
                root.name
            ),
        )
    })?;
    let mut out = Vec::new();
    for std_info in info
        .children
        .iter()
        .filter(|c| c.name.eq_ignore_ascii_case("standardInfo"))
    {
        let table = std_info.attr("process").unwrap_or_default();
        let mut r = record(table);
        for f in &std_info.children {
            let column = if f.name.eq_ignore_ascii_case("Field") {
                f.attr("FieldName").unwrap_or_default().to_string()
            } else {
                f.name.clone()
            };
            if !column.is_empty() && f.is_leaf() {
                r.insert(column, f.text.clone().into());
            }
        }
        out.push(r);
    }
    if out.is_empty() {
        return Err(malformed(
            "no_records",
            "the <ExInfo> holds no <standardInfo process=\"EX_GDBS_…\"> record",
        ));
    }
    Ok(out)
}

/// The blocks of an `APPROVEDATAINFO` document and the `EX_GDBS_*` table each one is
/// (source-formats.md §2.4).
const BLOCKS: &[(&str, &str)] = &[
    ("SPSHENQIN", "EX_GDBS_SB"),
    ("SHOULI", "EX_GDBS_SL"),
    ("SPSHOULI", "EX_GDBS_SL"),
    ("GDBSSPCL", "EX_GDBS_SPCL"),
    ("SPTEBIESHENQING", "EX_GDBS_TBCXSQ"),
    ("SPTEBIEJIEGUO", "EX_GDBS_TBCXJG"),
    ("SPBUZHENGGAOZHI", "EX_GDBS_BJGZ"),
    ("SPBUZHENGSHOULI", "EX_GDBS_BJSL"),
    ("SPBANJIE", "EX_GDBS_BJ"),
    ("SPLINGQU", "EX_GDBS_LQDJ"),
];

/// The simplified 受理 block `<SHOULI>` in `EX_GDBS_SL` columns: `YWSLSJ` 受理时间, `YWSLRMC`
/// 受理人, `YWSLRBM` 受理人工号, `YWSLZT` (1 受理 → `SLZTDM` 1, 0 不予受理 → 4), `YWSLYJ` 意见,
/// `YWSLBMBM` 受理部门. Other columns pass as they are.
const SHOULI: &[(&str, &str)] = &[
    ("YWSLSJ", "SLSJ"),
    ("YWSLRMC", "BLRXM"),
    ("YWSLRBM", "BLRGH"),
    ("YWSLYJ", "BSLYY"),
    ("YWSLBMBM", "SLBMZZJGDM"),
    ("YWSLBMMC", "SLBMMC"),
];

/// `<APPROVEDATAINFO>`: the root's own fields (`SBLSH_SHORT`, `SXBM`, `XZQHDM`, …) shared by
/// every block, one record per block (`<SHOULI>`, `<GDBSSPCL>`, `<SPTEBIESHENQING>`,
/// `<SPTEBIEJIEGUO>`, `<SPBUZHENGGAOZHI>`, `<SPBANJIE>`, …).
pub(crate) fn approve(root: &Element) -> Result<Vec<Record>, Malformed> {
    let info = find(root, "APPROVEDATAINFO").ok_or_else(|| {
        malformed(
            "malformed_xml",
            format!(
                "expected an <APPROVEDATAINFO> document in xmlStr, found <{}>",
                root.name
            ),
        )
    })?;
    let common: Vec<&Element> = info.children.iter().filter(|c| c.is_leaf()).collect();
    let mut out = Vec::new();
    for block in info.children.iter().filter(|c| !c.is_leaf()) {
        let Some(&(_, table)) = BLOCKS
            .iter()
            .find(|(b, _)| b.eq_ignore_ascii_case(&block.name))
        else {
            let known: Vec<&str> = BLOCKS.iter().map(|(b, _)| *b).collect();
            return Err(malformed(
                "unknown_block",
                format!(
                    "<{}> is not an APPROVEDATAINFO block; expected one of {}",
                    block.name,
                    known.join(", ")
                ),
            ));
        };
        let mut r = record(table);
        for c in &common {
            r.insert(c.name.clone(), c.text.clone().into());
        }
        let simplified = block.name.eq_ignore_ascii_case("SHOULI");
        for f in block.children.iter().filter(|c| c.is_leaf()) {
            let column = SHOULI
                .iter()
                .find(|(from, _)| simplified && from.eq_ignore_ascii_case(&f.name))
                .map_or(f.name.as_str(), |(_, to)| to);
            if simplified && f.name.eq_ignore_ascii_case("YWSLZT") {
                let code = match f.text.as_str() {
                    "1" => "1",
                    "0" => "4",
                    other => other,
                };
                r.insert("SLZTDM".into(), code.into());
            } else {
                r.insert(column.to_string(), f.text.clone().into());
            }
        }
        out.push(r);
    }
    if out.is_empty() {
        return Err(malformed(
            "no_records",
            "the <APPROVEDATAINFO> holds no block (<SHOULI>, <GDBSSPCL>, <SPBANJIE>, …)",
        ));
    }
    Ok(out)
}

/// `application/x-www-form-urlencoded` fields as bytes: the values are XML in the document's
/// own encoding, so they are percent-decoded without being read as UTF-8.
pub(crate) fn form_fields(body: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    fn unpercent(s: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex = s
                        .get(i + 1..i + 3)
                        .and_then(|h| std::str::from_utf8(h).ok());
                    match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        out
    }
    body.split(|&b| b == b'&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = match kv.iter().position(|&b| b == b'=') {
                Some(at) => (&kv[..at], &kv[at + 1..]),
                None => (kv, &b""[..]),
            };
            (unpercent(k), unpercent(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_encodings_are_decoded_and_mislabels_refused() {
        let (gbk, _, _) = GBK.encode("<?xml version=\"1.0\" encoding=\"GBK\"?><A>张伟</A>");
        let text = decode(&gbk, None).expect("GBK decodes");
        assert!(text.contains("张伟"), "{text}");
        // GB18030 four-byte forms (a CJK Extension B character).
        let (gb18030, _, _) = GB18030.encode("<?xml version='1.0' encoding='GB18030'?><A>𠀀王</A>");
        assert!(decode(&gb18030, None).expect("GB18030").contains("𠀀王"));
        // GBK bytes without a declaration (UTF-8 assumed): refused, naming the fix.
        let (bare, _, _) = GBK.encode("<A>张伟</A>");
        let e = decode(&bare, None).expect_err("not UTF-8");
        assert_eq!(e.code, "bad_encoding");
        assert!(e.message.contains("encoding=\"GBK\""), "{}", e.message);
        // UTF-8 bytes declared GBK: mislabelled.
        let e = decode(
            "<?xml version=\"1.0\" encoding=\"GBK\"?><A>张伟</A>".as_bytes(),
            None,
        )
        .expect_err("mislabelled");
        assert_eq!(e.code, "mislabelled_encoding");
        // An ASCII-only document declared GBK is fine (it is both).
        assert!(decode(b"<?xml version=\"1.0\" encoding=\"gb2312\"?><A>1</A>", None).is_ok());
        // Header and declaration disagreeing.
        let e = decode(&gbk, Some("utf-8")).expect_err("contradiction");
        assert_eq!(e.code, "mislabelled_encoding");
        assert_eq!(
            decode(b"<?xml version=\"1.0\" encoding=\"Big5\"?><A/>", None)
                .expect_err("big5")
                .code,
            "bad_encoding"
        );
    }

    #[test]
    fn documents_become_rows() {
        let doc = parse(
            r#"<ExInfo><standardInfo process="EX_GDBS_SL"><Field FieldName="SBLSH">K1</Field><Field FieldName="BSLYY">a &amp; b</Field><Field FieldName="EMPTY"/></standardInfo></ExInfo>"#,
        )
        .expect("parses");
        let rows = exinfo(&doc).expect("rows");
        assert_eq!(
            serde_json::Value::Object(rows[0].clone()),
            serde_json::json!({"_table":"EX_GDBS_SL","SBLSH":"K1","BSLYY":"a & b","EMPTY":""})
        );
        let doc = parse(
            "<APPROVEDATAINFO><SBLSH_SHORT>K2</SBLSH_SHORT><SXBM>X</SXBM><SHOULI><YWSLSJ>2026-03-02 09:00:00</YWSLSJ><YWSLZT>0</YWSLZT></SHOULI><SPBANJIE><BJJGDM>0</BJJGDM></SPBANJIE></APPROVEDATAINFO>",
        )
        .expect("parses");
        let rows = approve(&doc).expect("rows");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["_table"], "EX_GDBS_SL");
        assert_eq!(rows[0]["SLSJ"], "2026-03-02 09:00:00");
        assert_eq!(rows[0]["SLZTDM"], "4", "不予受理");
        assert_eq!(rows[1]["_table"], "EX_GDBS_BJ");
        assert_eq!(rows[1]["SBLSH_SHORT"], "K2");
        for bad in ["<A><B></A>", "<A>", "<A></A><B/>", "<A>&nosuch;</A>", ""] {
            assert_eq!(
                parse(bad).map(|_| ()).expect_err(bad).code,
                "malformed_xml",
                "{bad}"
            );
        }
    }

    /// Every byte of real payloads replaced by a few others, and every prefix: each is read or
    /// refused with a code, never a panic.
    #[test]
    fn damaged_payloads_are_refused_not_crashed_on() {
        let (gbk, _, _) = GBK.encode(
            "<?xml version=\"1.0\" encoding=\"GBK\"?><ExInfo><standardInfo process=\"EX_GDBS_SL\">\
             <Field FieldName=\"BLRXM\">李明 &amp; 张伟</Field><![CDATA[x]]></standardInfo></ExInfo>",
        );
        let approve_doc = "<?xml version='1.0' encoding='UTF-8'?><APPROVEDATAINFO><SXBM>P5</SXBM>\
                           <SHOULI><YWSLZT>1</YWSLZT></SHOULI></APPROVEDATAINFO>";
        for doc in [gbk.into_owned(), approve_doc.as_bytes().to_vec()] {
            let read = |bytes: &[u8]| {
                let _ = decode(bytes, None)
                    .and_then(|t| parse(&t))
                    .map(|root| (exinfo(&root), approve(&root)));
                let _ = form_fields(bytes);
            };
            for cut in 0..doc.len() {
                read(&doc[..cut]);
            }
            for i in 0..doc.len() {
                for b in [0u8, b'<', b'>', b'&', b'"', b'=', b'?', 0x80, 0xFF, b'%'] {
                    let mut d = doc.clone();
                    d[i] = b;
                    read(&d);
                }
            }
        }
    }

    #[test]
    fn form_values_stay_bytes() {
        let fields = form_fields(b"xmlStr=%3CA%3E%D5%C5+1%3C%2FA%3E&accessToken=t%2B1&x");
        assert_eq!(fields[0].1, b"<A>\xD5\xC5 1</A>");
        assert_eq!(fields[1], (b"accessToken".to_vec(), b"t+1".to_vec()));
        assert_eq!(fields[2], (b"x".to_vec(), Vec::new()));
    }
}
