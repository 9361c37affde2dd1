//! The status page's cluster section: every instance's state, then per relay each instance's
//! verdict and reason side by side, and per site the answer each serves; disagreements,
//! differing answers and configs that differ are marked. Everything shown is escaped.

use std::fmt::Write;

use super::report::{ClusterReport, InstanceStatus};
use crate::admin::page::escape;
use crate::answer::Mode;

const STYLE: &str = r#"
.cluster { background: #fff; border-radius: 8px; padding: .8em 1em; margin-top: 1em;
           box-shadow: 0 1px 3px rgba(0,0,0,.12); }
.cluster h2 { font-size: 1.1em; margin: 0 0 .4em; }
.cluster td, .cluster th { vertical-align: top; }
.cluster .v-up { color: #2e9e5b; font-weight: 600; } .cluster .v-down { color: #c8372d; font-weight: 600; }
.cluster .v-drained { color: #7a8590; font-weight: 600; } .cluster .v-unknown { color: #3f7fbf; }
.cluster tr.differ td { background: #fdf3e1; } .cluster .flag { color: #c8372d; font-weight: 600; }
.cluster .why { font-size: .85em; font-style: italic; color: #3c4650; }
"#;

/// The section for `report`.
pub(crate) fn section(report: &ClusterReport) -> String {
    let mut html = String::with_capacity(4096);
    let _ = write!(
        html,
        "<style>{STYLE}</style><section class=\"cluster\"><h2>Instances</h2><table>\
         <tr><th>instance</th><th>state</th><th>config</th></tr>"
    );
    for i in &report.instances {
        instance_row(&mut html, i);
    }
    html.push_str("</table><h2>Relays, as each instance sees them</h2><table><tr><th>relay</th>");
    header(&mut html, report);
    for row in &report.relays {
        let class = if row.disagree {
            " class=\"differ\""
        } else {
            ""
        };
        let flag = if row.disagree {
            " <span class=\"flag\">disagree</span>"
        } else {
            ""
        };
        let _ = write!(
            html,
            "<tr{class}><td>{}/{}{flag}</td>",
            escape(&row.site),
            escape(&row.host)
        );
        for cell in &row.views {
            match cell {
                Some(v) => {
                    let why = v.reason.as_deref().map_or(String::new(), |r| {
                        format!("<div class=\"why\">{}</div>", escape(r))
                    });
                    let _ = write!(
                        html,
                        "<td><span class=\"v-{v}\">{v}</span>{why}</td>",
                        v = escape(&v.verdict)
                    );
                }
                None => html.push_str("<td>–</td>"),
            }
        }
        html.push_str("</tr>");
    }
    html.push_str("</table><h2>Answers, as each instance serves them</h2><table><tr><th>site</th>");
    header(&mut html, report);
    for row in &report.sites {
        let class = if row.differ { " class=\"differ\"" } else { "" };
        let _ = write!(html, "<tr{class}><td>{}</td>", escape(&row.site));
        for cell in &row.answers {
            match cell {
                Some(a) => {
                    let mode = match a.mode {
                        Mode::Normal => "local hosts lead",
                        Mode::RemoteOnly => "fallback sites only",
                        Mode::Failsafe => "failsafe",
                    };
                    let _ = write!(
                        html,
                        "<td>{mode}<div class=\"why\">{}</div></td>",
                        escape(&a.answer.join(", "))
                    );
                }
                None => html.push_str("<td>–</td>"),
            }
        }
        html.push_str("</tr>");
    }
    html.push_str("</table></section>");
    html
}

fn header(html: &mut String, report: &ClusterReport) {
    for i in &report.instances {
        let _ = write!(html, "<th>{}</th>", escape(&i.name));
    }
    html.push_str("</tr>");
}

fn instance_row(html: &mut String, i: &InstanceStatus) {
    let state = match (&i.state[..], &i.problem) {
        ("this", _) => "this instance".to_string(),
        (s, Some(problem)) => format!("{s}: {problem}"),
        (s, None) => s.to_string(),
    };
    let config = if i.config_differs {
        "<span class=\"flag\">differs from this instance's</span>".to_string()
    } else {
        i.fingerprint.as_deref().map_or("–".into(), |f| {
            format!("same ({})", escape(&f[..f.len().min(12)]))
        })
    };
    let _ = write!(
        html,
        "<tr><td>{}</td><td>{}</td><td>{config}</td></tr>",
        escape(&i.name),
        escape(&state)
    );
}
