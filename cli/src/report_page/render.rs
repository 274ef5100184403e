//! The staff report as one self-contained HTML page: the model ([`StaffReport`]) is turned
//! into rows of text in the chosen language (with phones masked unless asked), then laid out
//! by the askama template `cli/templates/staff_report.html` (inline CSS and SVG, no script,
//! nothing fetched).
//!
//! Why askama: the template is an HTML file a designer can read and edit, checked against
//! these structs when the crate compiles (a misspelt field is a build error, not a blank on
//! the page), and every `{{ value }}` is HTML-escaped unless marked otherwise (nothing here
//! is); it adds no runtime dependency and is actively maintained. maud would have put the
//! HTML inside Rust macros instead, harder to read for whoever adjusts the page.

use askama::Template;

use super::model::{Phone, StaffReport, UnreachedFamily};
use super::words::{history_action, language_name, reason_words, status_words, Lang, Words, STATUS_ORDER};

/// How to render: the language, whether phones are shown whole, the time zone of the dates.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    pub lang: Lang,
    pub show_phones: bool,
    pub zone: chrono_tz::Tz,
}

/// The page, as HTML.
pub fn render_html(report: &StaffReport, options: &RenderOptions) -> Result<String, askama::Error> {
    Page::new(report, options).render()
}

/// The width of the funnel chart's drawing, in SVG units (the chart scales to the page).
const FUNNEL_WIDTH: u32 = 340;
/// One step of the funnel: label line, then bar, then a gap.
const FUNNEL_ROW: u32 = 48;
const FUNNEL_BAR: u32 = 16;

#[derive(Template)]
#[template(path = "staff_report.html")]
struct Page<'a> {
    lang: &'static str,
    w: &'static Words,
    campaign: &'a str,
    description: Option<&'a str>,
    cancelled: Option<String>,
    summary: String,
    facts: Vec<(&'static str, String)>,
    cards: Vec<Card>,
    funnel: FunnelChart,
    statuses: Vec<StatusRow>,
    unreached: Vec<FamilyRow>,
    phones_note: &'static str,
    acks: Vec<AckRow>,
    not_answered: Option<String>,
    replies: Vec<ReplyRow>,
    history: Vec<HistoryRow>,
    languages: Vec<(String, String)>,
    footer: String,
}

/// A big number at the top.
struct Card {
    number: String,
    label: &'static str,
    tone: &'static str,
}

struct FunnelChart {
    title: &'static str,
    width: u32,
    height: u32,
    rows: Vec<FunnelRow>,
}

/// One step of the funnel, with its geometry (SVG units).
struct FunnelRow {
    label: &'static str,
    figure: String,
    text_y: u32,
    bar_y: u32,
    bar_height: u32,
    bar_width: u32,
    color: &'static str,
}

struct StatusRow {
    label: String,
    meaning: &'static str,
    count: String,
    tone: &'static str,
}

struct FamilyRow {
    family: String,
    phone: String,
    why: &'static str,
    what_to_do: &'static str,
    detail: String,
}

struct AckRow {
    answer: String,
    count: String,
    share: String,
}

struct ReplyRow {
    when: String,
    who: String,
    text: Option<String>,
    button: Option<String>,
    attachments: Option<String>,
}

struct HistoryRow {
    when: String,
    action: String,
    by: String,
    detail: Option<String>,
}

/// The phone as the page shows it.
pub fn phone_text(phone: Option<&Phone>, show_phones: bool, w: &Words) -> String {
    phone.map_or_else(|| w.phone_unknown.to_owned(), |phone| phone.shown(show_phones))
}

/// What the administrator needs: the status, Twilio's code, the error text (its phones
/// masked unless shown).
pub fn technical_detail(family: &UnreachedFamily, show_phones: bool) -> String {
    let mut parts = vec![family.status.clone()];
    if let Some(code) = family.code {
        parts.push(code.to_string());
    }
    if let Some(error) = &family.error {
        let error = error.shown(show_phones);
        // The code already leads most texts (`63003: Channel…`): not twice.
        let error = match family.code {
            Some(code) => error.strip_prefix(&format!("{code}: ")).map(str::to_owned).unwrap_or(error),
            None => error,
        };
        parts.push(error);
    }
    parts.join(" · ")
}

/// The status's name in words, or the name itself for one this page does not know.
fn status_label(lang: Lang, status: &str) -> String {
    status_words(lang, status).map_or_else(|| status.to_owned(), |words| words.label.to_owned())
}

impl<'a> Page<'a> {
    fn new(report: &'a StaffReport, options: &RenderOptions) -> Self {
        let lang = options.lang;
        let w = lang.words();
        let date = |t: i64| lang.date_time(t, options.zone);
        let count = |name: &str| report.by_status.get(name).copied().unwrap_or(0);
        let funnel = &report.funnel;
        let base = funnel.base();

        let mut facts = Vec::new();
        if let Some(at) = report.facts.as_ref().and_then(|f| f.created_at).or(report.recorded.first_at) {
            facts.push((w.first_message, date(at)));
        }
        let by =
            report.facts.as_ref().and_then(|f| f.created_by.clone()).or_else(|| {
                (!report.recorded.requested_by.is_empty()).then(|| report.recorded.requested_by.join(", "))
            });
        if let Some(by) = by {
            facts.push((w.sent_by, by));
        }
        if let Some(at) = report.recorded.last_at {
            facts.push((w.last_news, date(at)));
        }

        let cancelled = report.facts.as_ref().and_then(|f| f.cancelled.as_ref()).map(|c| {
            let mut parts = Vec::new();
            if let Some(at) = c.at {
                parts.push(date(at));
            }
            if let Some(by) = c.by.as_deref() {
                parts.push(lang.by(by));
            }
            if let Some(reason) = c.reason.as_deref() {
                parts.push(lang.quote(reason));
            }
            parts.join(" · ")
        });

        let waiting = ["sent", "sending", "retrying", "in_doubt", "scheduled"].iter().map(|s| count(s)).sum::<u64>();
        let cards = vec![
            Card { number: lang.number(funnel.delivered), label: w.card_delivered, tone: "good" },
            Card { number: lang.number(waiting), label: w.card_waiting, tone: "waiting" },
            Card { number: lang.number(report.unreached.len() as u64), label: w.card_unreached, tone: "bad" },
        ];

        let mut steps = vec![
            (w.step_base, base, "#94a3b8"),
            (w.step_sent, funnel.sent, "#60a5fa"),
            (w.step_delivered, funnel.delivered, "#2563eb"),
            (w.step_read, funnel.read, "#1e40af"),
        ];
        if let Some(acknowledged) = funnel.acknowledged {
            steps.push((w.step_acknowledged, acknowledged, "#0f766e"));
        }
        let rows: Vec<FunnelRow> = steps
            .into_iter()
            .enumerate()
            .map(|(i, (label, n, color))| {
                let top = i as u32 * FUNNEL_ROW;
                let share = if base == 0 { 0.0 } else { (n as f64 / base as f64).min(1.0) };
                let mut bar_width = (share * f64::from(FUNNEL_WIDTH)).round() as u32;
                if n > 0 {
                    bar_width = bar_width.max(3); // a step with messages never looks empty
                }
                FunnelRow {
                    label,
                    figure: format!("{} · {}", lang.number(n), lang.percent(n, base)),
                    text_y: top + 14,
                    bar_y: top + 20,
                    bar_height: FUNNEL_BAR,
                    bar_width,
                    color,
                }
            })
            .collect();
        let funnel_chart = FunnelChart {
            title: w.funnel_title,
            width: FUNNEL_WIDTH,
            height: rows.len() as u32 * FUNNEL_ROW - (FUNNEL_ROW - 20 - FUNNEL_BAR),
            rows,
        };

        let mut names: Vec<&str> = STATUS_ORDER.to_vec();
        names.extend(report.by_status.keys().map(String::as_str).filter(|name| !STATUS_ORDER.contains(name)));
        let statuses = names
            .into_iter()
            .filter(|name| count(name) > 0)
            .map(|name| {
                let words = status_words(lang, name);
                StatusRow {
                    label: status_label(lang, name),
                    meaning: words.map_or(w.unknown_status, |words| words.meaning),
                    count: lang.number(count(name)),
                    tone: words.map_or("neutral", |words| words.tone.class()),
                }
            })
            .collect();

        let unreached = report
            .unreached
            .iter()
            .map(|family| {
                let words = reason_words(lang, family.reason);
                FamilyRow {
                    family: family.recipient_id.clone().unwrap_or_else(|| w.family_unknown.to_owned()),
                    phone: phone_text(family.phone.as_ref(), options.show_phones, w),
                    why: words.why,
                    what_to_do: words.what_to_do,
                    detail: technical_detail(family, options.show_phones),
                }
            })
            .collect();

        let acknowledged: u64 = report.acks.iter().map(|a| a.count).sum();
        let acks = report
            .acks
            .iter()
            .map(|ack| AckRow {
                answer: ack.answer.clone(),
                count: lang.number(ack.count),
                share: lang.percent(ack.count, acknowledged),
            })
            .collect();
        let not_answered =
            (!report.acks.is_empty()).then(|| lang.not_answered(funnel.delivered.saturating_sub(acknowledged)));

        let replies = report
            .replies
            .iter()
            .map(|reply| {
                let mut who = Vec::new();
                if let Some(id) = reply.recipient_id.as_deref() {
                    who.push(id.to_owned());
                }
                if let Some(phone) = &reply.phone {
                    who.push(phone.shown(options.show_phones));
                }
                if let Some(name) = reply.profile_name.as_deref() {
                    who.push(name.to_owned());
                }
                ReplyRow {
                    when: date(reply.received_at),
                    who: who.join(" · "),
                    text: reply.body.clone().filter(|b| !b.trim().is_empty()),
                    button: reply.button_text.clone(),
                    attachments: (reply.media_count > 0).then(|| lang.attachments(reply.media_count)),
                }
            })
            .collect();

        let history = report
            .history
            .iter()
            .map(|entry| HistoryRow {
                when: entry.at.map_or_else(|| "–".to_owned(), date),
                action: history_action(lang, &entry.action).map_or_else(|| entry.action.clone(), str::to_owned),
                by: entry.by.as_deref().map_or_else(|| w.by_unknown.to_owned(), |by| lang.by(by)),
                detail: entry.detail.clone(),
            })
            .collect();

        let languages = report
            .by_language
            .iter()
            .map(|l| {
                (language_name(lang, &l.lang), format!("{} · {}", lang.number(l.count), lang.percent(l.count, base)))
            })
            .collect();

        Page {
            lang: lang.code(),
            w,
            campaign: &report.campaign,
            description: report.facts.as_ref().and_then(|f| f.description.as_deref()),
            cancelled,
            summary: lang.summary(funnel.delivered, base),
            facts,
            cards,
            funnel: funnel_chart,
            statuses,
            unreached,
            phones_note: if options.show_phones { w.phones_shown } else { w.phones_masked },
            acks,
            not_answered,
            replies,
            history,
            languages,
            footer: lang.footer(&date(report.generated_at), options.zone.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report_page::fixtures::{full_report, T0};
    use crate::report_page::words::{EN, FR};

    fn options(lang: Lang, show_phones: bool) -> RenderOptions {
        RenderOptions { lang, show_phones, zone: chrono_tz::Europe::Paris }
    }

    fn page(report: &StaffReport, lang: Lang) -> String {
        render_html(report, &options(lang, false)).expect("the page renders")
    }

    /// Text as askama writes it into HTML.
    fn escaped(text: &str) -> String {
        text.replace('&', "&#38;")
            .replace('<', "&#60;")
            .replace('>', "&#62;")
            .replace('"', "&#34;")
            .replace('\'', "&#39;")
    }

    #[track_caller]
    fn assert_shows(html: &str, text: &str) {
        assert!(html.contains(&escaped(text)), "{text:?} is not on the page");
    }

    #[test]
    fn a_full_report_shows_every_section_in_french() {
        let html = page(&full_report(), Lang::Fr);
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"fr\">"), "{}", &html[..60]);
        for text in [
            "trip-2026",
            "Sortie au musée <jeudi> & \"pique-nique\"",
            "Campagne annulée",
            "3 décembre 2026 à 09:05 · par head@school · «\u{a0}storm warning\u{a0}»",
            "Sur 20 messages, 10 sont arrivés sur le téléphone des parents.",
            "Début de l'envoi",
            "3 décembre 2026 à 08:05",
            "secretariat@school",
            // the funnel, with the acknowledged step
            "Messages à envoyer",
            "20 · 100\u{202f}%",
            "12 · 60\u{202f}%",
            "10 · 50\u{202f}%",
            "6 · 30\u{202f}%",
            "Ont répondu",
            "5 · 25\u{202f}%",
            // the statuses, with their meaning, scheduled and cancelled included
            "En attente de confirmation",
            "En attente de la confirmation de Twilio",
            "Programmé",
            "Annulé",
            // the families not reached
            "+33*******03",
            "Ce numéro n'utilise pas WhatsApp.",
            "Ils ont demandé à ne plus recevoir de messages WhatsApp (STOP).",
            "Hors de la fenêtre de 24 heures de WhatsApp : il faut un modèle de message approuvé.",
            "undelivered · 63016 · outside the 24-hour window: send a template",
            "aucun numéro valide",
            "Numéros masqués.",
            // answers, replies, history, languages
            "Réponses données avec les boutons du message :",
            "4 · 80\u{202f}%",
            "5 familles jointes n'ont pas encore répondu.",
            "Léo a un rendez-vous <b>médical</b> jeudi, il viendra à 10h.",
            "p01 · +33*******01 · Jean",
            "Bouton : ",
            "Oui, il viendra",
            "2 pièces jointes",
            "Envoi lancé",
            "Messages en échec renvoyés",
            "auteur non enregistré",
            "archived",
            "arabe",
            "15 · 75\u{202f}%",
            "Établi par Missive le 3 décembre 2026 à 10:05 (heure de Europe/Paris).",
        ] {
            assert_shows(&html, text);
        }
        let statuses = html.matches("<tr class=\"status\">").count();
        assert_eq!(statuses, 10, "every status with a count, none at 0");
        assert_eq!(html.matches("<tr class=\"family\">").count(), 5);
        assert_eq!(html.matches("<g class=\"step\">").count(), 5);
        for none in [FR.replies_none, FR.acks_none, FR.history_none, FR.unreached_none, FR.status_none] {
            assert!(!html.contains(&escaped(none)), "{none:?} on a page that has data");
        }
    }

    #[test]
    fn a_full_report_shows_every_section_in_english() {
        let html = page(&full_report(), Lang::En);
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        for text in [
            "Campaign cancelled",
            "3 December 2026 at 09:05 · by head@school · “storm warning”",
            "Of 20 messages, 10 reached the parents' phones.",
            "Messages to send",
            "20 · 100%",
            "Answered",
            "Waiting for confirmation",
            "Waiting for Twilio's confirmation",
            "Scheduled",
            "Cancelled",
            "This number does not use WhatsApp.",
            "They asked to stop WhatsApp messages (STOP).",
            "Outside WhatsApp's 24-hour window: an approved template is needed.",
            "no valid number",
            "5 families reached have not answered yet.",
            "Button: ",
            "2 attachments",
            "Sending started",
            "Campaign cancelled",
            "who: not recorded",
            "Arabic",
            "Made by Missive on 3 December 2026 at 10:05 (Europe/Paris time).",
        ] {
            assert_shows(&html, text);
        }
    }

    #[test]
    fn each_page_speaks_one_language() {
        let report = full_report();
        let (fr, en) = (page(&report, Lang::Fr), page(&report, Lang::En));
        for (name, text) in EN.fields() {
            if text.len() > 8 {
                assert!(!fr.contains(&escaped(text)), "English {name} on the French page");
            }
        }
        for (name, text) in FR.fields() {
            if text.len() > 8 {
                assert!(!en.contains(&escaped(text)), "French {name} on the English page");
            }
        }
    }

    #[test]
    fn an_empty_report_says_so_in_words_in_both_languages() {
        let report = StaffReport { campaign: "nothing".into(), generated_at: T0, ..StaffReport::default() };
        for lang in Lang::ALL {
            let w = lang.words();
            let html = page(&report, lang);
            for none in [w.status_none, w.unreached_none, w.acks_none, w.replies_none, w.history_none] {
                assert_shows(&html, none);
            }
            assert!(!html.contains("<table"), "no empty table");
            assert!(!html.contains("<ol"), "no empty list");
            assert!(!html.contains(&escaped(w.step_acknowledged)), "no acknowledgement step without answers");
            assert!(!html.contains(&escaped(w.languages_title)), "no language section without languages");
            assert!(html.contains("0 · –"), "a funnel of nothing has no percentage");
        }
    }

    #[test]
    fn the_page_is_self_contained() {
        for lang in Lang::ALL {
            let html = page(&full_report(), lang);
            for banned in ["<script", "src=", "href=", "url(", "@import", "<link", "http:", "https:", "<iframe", "<img"]
            {
                assert!(!html.contains(banned), "{banned:?} in the {lang:?} page");
            }
        }
    }

    #[test]
    fn phones_are_masked_unless_shown() {
        let report = full_report();
        let masked = page(&report, Lang::Fr);
        assert!(!masked.contains("+3361234560"), "a whole phone on the masked page");
        assert!(!masked.contains("+3361234561"), "a whole phone on the masked page");
        assert_shows(&masked, "The 'To' number +33*******08 is not valid");
        let shown = render_html(&report, &options(Lang::Fr, true)).unwrap();
        for phone in ["+33612345603", "+33612345607", "+33612345601"] {
            assert!(shown.contains(phone), "{phone} with --show-phones");
        }
        assert_shows(&shown, "The 'To' number +33612345608 is not valid");
        assert_shows(&shown, FR.phones_shown);
    }

    #[test]
    fn text_from_the_tables_is_escaped() {
        let mut report = full_report();
        report.campaign = "x<script>alert(1)</script>".into();
        report.replies[0].body = Some("<img src=x onerror=alert(1)>\"'&".into());
        report.unreached[0].recipient_id = Some("p<03>".into());
        let html = page(&report, Lang::En);
        assert!(!html.contains("<script>alert(1)"));
        assert!(!html.contains("<img"));
        assert!(html.contains("&#60;img src=x onerror=alert(1)&#62;&#34;&#39;&#38;"));
        assert!(html.contains("p&#60;03&#62;"));
    }

    #[test]
    fn the_funnel_bars_are_proportional_to_the_first_step() {
        let html = page(&full_report(), Lang::En);
        let widths: Vec<u32> = html
            .split("rx=\"3\" fill=")
            .next()
            .into_iter()
            .flat_map(|_| html.match_indices("\" height=\"16\" rx=\"3\" fill=\""))
            .map(|(at, _)| {
                let before = &html[..at];
                before[before.rfind("width=\"").unwrap() + 7..].parse().unwrap()
            })
            .collect();
        // 20, 12, 10, 6, 5 of 20 on a 340-unit bar.
        assert_eq!(widths, [340, 204, 170, 102, 85]);
    }
}
