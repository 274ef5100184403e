//! Every word of the staff report, in French and in English, in this one file: the page's
//! headings and sentences ([`Words`]), each status's name and meaning in plain words
//! ([`status_words`], keyed by the status's name so that statuses the library gains later
//! are covered already), each reason a family was not reached with what to do
//! ([`reason_words`]), and the formats of numbers, percentages and dates.
//!
//! A translator changes this file only; the template holds no text of its own.

use chrono::{Datelike, TimeZone, Timelike};
use serde::Serialize;

use super::reasons::Reason;

/// The page's language (`--lang`, default from `SCHOOL_LANG`, else French).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Fr,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Fr, Lang::En];

    /// The language's code, as `--lang` and `<html lang>` take it.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    /// `fr` or `en` (any case, surrounding spaces ignored).
    pub fn parse(text: &str) -> Result<Lang, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "fr" => Ok(Lang::Fr),
            "en" => Ok(Lang::En),
            other => Err(format!("expected fr or en, got {other:?}")),
        }
    }

    pub fn words(self) -> &'static Words {
        match self {
            Lang::Fr => &FR,
            Lang::En => &EN,
        }
    }
}

/// Defines [`Words`] and its list of fields (so that a test can check every one is translated).
macro_rules! words {
    ($($field:ident),* $(,)?) => {
        /// The fixed sentences and labels of the page and of the paper list.
        #[derive(Debug)]
        pub struct Words {
            $(pub $field: &'static str,)*
        }

        impl Words {
            /// Every field's name and text.
            pub fn fields(&self) -> Vec<(&'static str, &'static str)> {
                vec![$((stringify!($field), self.$field)),*]
            }
        }
    };
}

words!(
    title,
    campaign,
    cancelled_banner,
    first_message,
    last_news,
    sent_by,
    card_delivered,
    card_waiting,
    card_unreached,
    funnel_title,
    step_base,
    step_sent,
    step_delivered,
    step_read,
    step_acknowledged,
    funnel_note,
    status_title,
    col_status,
    col_count,
    col_meaning,
    status_none,
    unreached_title,
    unreached_intro,
    unreached_none,
    col_family,
    col_phone,
    col_why,
    col_todo,
    col_detail,
    col_message,
    phones_masked,
    phones_shown,
    family_unknown,
    phone_unknown,
    acks_title,
    acks_intro,
    acks_none,
    replies_title,
    replies_none,
    button,
    history_title,
    history_none,
    by_unknown,
    languages_title,
    unknown_status,
);

pub static FR: Words = Words {
    title: "Rapport de campagne",
    campaign: "Campagne",
    cancelled_banner: "Campagne annulée",
    first_message: "Début de l'envoi",
    last_news: "Dernière nouvelle d'un message",
    sent_by: "Envoyée par",
    card_delivered: "arrivés sur le téléphone",
    card_waiting: "en cours ou sans confirmation",
    card_unreached: "familles non jointes",
    funnel_title: "Parcours des messages",
    step_base: "Messages à envoyer",
    step_sent: "Envoyés",
    step_delivered: "Arrivés sur le téléphone",
    step_read: "Lus",
    step_acknowledged: "Ont répondu",
    funnel_note: "Pourcentages calculés sur les messages à envoyer. « Lus » ne compte que les parents dont \
                  WhatsApp envoie les confirmations de lecture.",
    status_title: "Où en est chaque message",
    col_status: "État",
    col_count: "Nombre",
    col_meaning: "Ce que cela veut dire",
    status_none: "Aucun message de cette campagne n'est enregistré pour l'instant. Vérifiez le nom de la \
                  campagne, ou regardez de nouveau dans quelques minutes.",
    unreached_title: "Familles non jointes",
    unreached_intro: "Le message n'arrivera pas chez ces familles. Prévenez-les autrement : voici pourquoi, et \
                      que faire.",
    unreached_none: "Aucune famille non jointe pour l'instant.",
    col_family: "Famille",
    col_phone: "Téléphone",
    col_why: "Pourquoi",
    col_todo: "Que faire",
    col_detail: "Détail technique",
    col_message: "Message",
    phones_masked: "Numéros masqués. L'administrateur peut produire la liste avec les numéros complets.",
    phones_shown: "Numéros complets : document confidentiel, à ne pas diffuser.",
    family_unknown: "(sans identifiant)",
    phone_unknown: "aucun numéro valide",
    acks_title: "Réponses aux boutons",
    acks_intro: "Réponses données avec les boutons du message :",
    acks_none: "Pas encore de réponse aux boutons.",
    replies_title: "Messages des parents",
    replies_none: "Pas encore de réponse des parents.",
    button: "Bouton :",
    history_title: "Historique",
    history_none: "Rien n'a encore été envoyé.",
    by_unknown: "auteur non enregistré",
    languages_title: "Langues des messages",
    unknown_status: "État inconnu de cette version du rapport.",
};

pub static EN: Words = Words {
    title: "Campaign report",
    campaign: "Campaign",
    cancelled_banner: "Campaign cancelled",
    first_message: "Sending started",
    last_news: "Latest news of a message",
    sent_by: "Sent by",
    card_delivered: "delivered to the phone",
    card_waiting: "on their way or not confirmed",
    card_unreached: "families not reached",
    funnel_title: "How far the messages got",
    step_base: "Messages to send",
    step_sent: "Sent",
    step_delivered: "Delivered to the phone",
    step_read: "Read",
    step_acknowledged: "Answered",
    funnel_note: "Percentages are of the messages to send. “Read” counts only parents whose WhatsApp sends \
                  read receipts.",
    status_title: "Where each message stands",
    col_status: "Status",
    col_count: "Count",
    col_meaning: "What it means",
    status_none: "No message of this campaign is recorded yet. Check the campaign's name, or look again in a \
                  few minutes.",
    unreached_title: "Families not reached",
    unreached_intro: "The message will not reach these families. Tell them another way: here is why, and what \
                      to do.",
    unreached_none: "No family is left unreached so far.",
    col_family: "Family",
    col_phone: "Phone",
    col_why: "Why",
    col_todo: "What to do",
    col_detail: "Technical detail",
    col_message: "Message",
    phones_masked: "Numbers are masked. The administrator can produce the list with full numbers.",
    phones_shown: "Full numbers: a confidential document, do not pass it on.",
    family_unknown: "(no id)",
    phone_unknown: "no valid number",
    acks_title: "Button answers",
    acks_intro: "Answers given with the message's buttons:",
    acks_none: "No button answers yet.",
    replies_title: "Messages from parents",
    replies_none: "No replies yet.",
    button: "Button:",
    history_title: "History",
    history_none: "Nothing has been sent yet.",
    by_unknown: "who: not recorded",
    languages_title: "Languages of the messages",
    unknown_status: "A status this version of the report does not know.",
};

/// The statuses in the order the page lists them: arrived first, then on the way, then not
/// sent. Every status of DESIGN.md ("Statuses") is here, `scheduled` and `cancelled` included.
pub const STATUS_ORDER: [&str; 14] = [
    "read",
    "delivered",
    "sent",
    "sending",
    "retrying",
    "in_doubt",
    "scheduled",
    "undelivered",
    "failed",
    "rejected",
    "skipped",
    "expired",
    "cancelled",
    "dry_run",
];

/// How a status is shown: good news, still moving, not reached, or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Good,
    Waiting,
    Bad,
    Neutral,
}

impl Tone {
    /// The CSS class of the status's dot.
    pub fn class(self) -> &'static str {
        match self {
            Tone::Good => "good",
            Tone::Waiting => "waiting",
            Tone::Bad => "bad",
            Tone::Neutral => "neutral",
        }
    }
}

/// A status's name and meaning for staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusWords {
    pub label: &'static str,
    pub meaning: &'static str,
    pub tone: Tone,
}

/// The words for a status name; `None` for a name this table does not know.
pub fn status_words(lang: Lang, status: &str) -> Option<StatusWords> {
    use Tone::*;
    let (tone, fr, en) = match status {
        "sending" => (
            Waiting,
            ("En cours d'envoi", "Missive est en train de l'envoyer."),
            ("Being sent", "Missive is sending it right now."),
        ),
        "retrying" => (
            Waiting,
            ("Nouvel essai prévu", "Un problème passager ; Missive réessaie tout seul dans quelques minutes."),
            ("Will be tried again", "A passing problem; Missive tries again by itself in a few minutes."),
        ),
        "in_doubt" => (
            Waiting,
            (
                "En attente de confirmation",
                "En attente de la confirmation de Twilio ; Missive vérifie avant tout nouvel envoi, le parent ne le \
                 recevra pas deux fois.",
            ),
            (
                "Waiting for confirmation",
                "Waiting for Twilio's confirmation; Missive checks before sending again, so the parent never gets it \
                 twice.",
            ),
        ),
        "scheduled" => (
            Waiting,
            ("Programmé", "Il partira plus tard : à l'heure choisie, après les heures calmes, ou quand la limite du jour le permet."),
            ("Scheduled", "It will go later: at the time chosen, after quiet hours, or when the daily limit allows."),
        ),
        "sent" => (
            Good,
            ("Envoyé", "Accepté par WhatsApp ; pas encore de confirmation d'arrivée sur le téléphone."),
            ("Sent", "Accepted by WhatsApp; no confirmation yet that it reached the phone."),
        ),
        "delivered" => (
            Good,
            ("Arrivé", "Arrivé sur le téléphone du parent."),
            ("Delivered", "It reached the parent's phone."),
        ),
        "read" => (Good, ("Lu", "Le parent l'a ouvert."), ("Read", "The parent opened it.")),
        "undelivered" => (
            Bad,
            ("Non distribué", "WhatsApp l'a accepté mais n'a pas pu le remettre sur le téléphone."),
            ("Not delivered", "WhatsApp accepted it but could not get it to the phone."),
        ),
        "failed" => (
            Bad,
            ("Échec", "Il n'a pas pu être envoyé (voir les familles non jointes)."),
            ("Failed", "It could not be sent (see the families not reached)."),
        ),
        "rejected" => (
            Bad,
            ("Refusé avant l'envoi", "Le message contenait une erreur, souvent le numéro ; il n'est pas parti."),
            ("Refused before sending", "The message had an error, often the number; it never left."),
        ),
        "skipped" => (
            Bad,
            (
                "Non envoyé : pas d'accord",
                "Le parent n'a pas accepté les messages WhatsApp de l'école, ou a demandé à ne plus en recevoir.",
            ),
            (
                "Not sent: no consent",
                "The parent has not agreed to WhatsApp messages from the school, or asked to stop them.",
            ),
        ),
        "expired" => (
            Bad,
            ("Trop tard", "Il n'était plus d'actualité avant d'avoir pu partir ; il n'a pas été envoyé."),
            ("Too late", "It was out of date before it could go; it was not sent."),
        ),
        "cancelled" => (
            Neutral,
            ("Annulé", "La campagne a été annulée avant son départ ; il n'a pas été envoyé."),
            ("Cancelled", "The campaign was cancelled before it left; it was not sent."),
        ),
        "dry_run" => (
            Neutral,
            ("Essai, rien envoyé", "Missive n'était pas relié à WhatsApp : message vérifié et noté, mais pas envoyé."),
            ("Test run, nothing sent", "Missive was not connected to WhatsApp: checked and recorded, not sent."),
        ),
        _ => return None,
    };
    let (label, meaning) = match lang {
        Lang::Fr => fr,
        Lang::En => en,
    };
    Some(StatusWords { label, meaning, tone })
}

/// Why a family was not reached, and what the school can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReasonWords {
    pub why: &'static str,
    pub what_to_do: &'static str,
}

pub fn reason_words(lang: Lang, reason: Reason) -> ReasonWords {
    use Reason::*;
    let (fr, en) = match reason {
        NoConsent => (
            (
                "Aucun accord pour recevoir les messages WhatsApp de l'école n'est enregistré.",
                "Appelez-les ; s'ils acceptent WhatsApp, notez-le dans le fichier de l'école.",
            ),
            (
                "No agreement to receive the school's WhatsApp messages is on record.",
                "Call them; if they agree to WhatsApp, record it in the school's file.",
            ),
        ),
        DeclinedInSchoolFile => (
            (
                "Ils n'ont pas accepté les messages WhatsApp (fichier de l'école).",
                "Appelez-les ou prévenez-les sur papier.",
            ),
            ("They have not accepted WhatsApp messages (school's file).", "Call them or tell them on paper."),
        ),
        AskedToStop => (
            (
                "Ils ont demandé à ne plus recevoir de messages WhatsApp (STOP).",
                "Appelez-les ou écrivez-leur ; ne les réinscrivez pas sans leur accord.",
            ),
            (
                "They asked to stop WhatsApp messages (STOP).",
                "Call or write to them; do not sign them up again without their agreement.",
            ),
        ),
        OptedOut => (
            ("Ils ne souhaitent pas recevoir de messages WhatsApp.", "Appelez-les ou prévenez-les sur papier."),
            ("They do not want WhatsApp messages.", "Call them or tell them on paper."),
        ),
        Erased => (
            ("Leurs données ont été effacées à leur demande.", "Prévenez-les autrement que par WhatsApp."),
            ("Their data was erased at their request.", "Tell them by a way other than WhatsApp."),
        ),
        AgreedSince => (
            (
                "Pas d'accord au moment de l'envoi ; ils ont accepté depuis.",
                "Demandez à l'administrateur de leur renvoyer le message.",
            ),
            (
                "No agreement when it was sent; they have agreed since.",
                "Ask the administrator to send it to them again.",
            ),
        ),
        InvalidNumber => (
            ("Le numéro n'est pas valide.", "Vérifiez le numéro avec la famille et corrigez-le dans le fichier."),
            ("The number is not valid.", "Check the number with the family and correct it in the file."),
        ),
        NotMobile => (
            ("Ce n'est pas un numéro de portable.", "Appelez-les et demandez un numéro de portable."),
            ("It is not a mobile number.", "Call them and ask for a mobile number."),
        ),
        NotOnWhatsApp => (
            ("Ce numéro n'utilise pas WhatsApp.", "Appelez-les ou envoyez un SMS ; vérifiez le numéro avec eux."),
            ("This number does not use WhatsApp.", "Call them or send a text; check the number with them."),
        ),
        Blocked => (
            ("La famille a bloqué le numéro WhatsApp de l'école.", "Appelez-les."),
            ("The family blocked the school's WhatsApp number.", "Call them."),
        ),
        WindowClosed => (
            (
                "Hors de la fenêtre de 24 heures de WhatsApp : il faut un modèle de message approuvé.",
                "Appelez-les ; demandez à l'administrateur d'envoyer un modèle approuvé.",
            ),
            (
                "Outside WhatsApp's 24-hour window: an approved template is needed.",
                "Call them; ask the administrator to send an approved template.",
            ),
        ),
        HeldByWhatsApp => (
            (
                "WhatsApp a retenu le message (limite de messages par parent).",
                "Appelez-les, ou faites renvoyer le message demain.",
            ),
            (
                "WhatsApp held the message back (a limit of messages per parent).",
                "Call them, or have it sent again tomorrow.",
            ),
        ),
        RecipientRefused => (
            (
                "WhatsApp refuse ce destinataire (numéro inconnu ou compte WhatsApp inactif).",
                "Vérifiez le numéro, puis appelez-les.",
            ),
            (
                "WhatsApp refused this recipient (unknown number or inactive WhatsApp account).",
                "Check the number, then call them.",
            ),
        ),
        Unreachable => (
            ("Leur téléphone n'a pas pu être joint.", "Appelez-les, ou faites renvoyer le message plus tard."),
            ("Their phone could not be reached.", "Call them, or have it sent again later."),
        ),
        Filtered => (
            ("Le message a été filtré en chemin.", "Appelez-les, et prévenez l'administrateur."),
            ("The message was filtered on the way.", "Call them, and tell the administrator."),
        ),
        AccountProblem => (
            (
                "Le compte WhatsApp de l'école ne pouvait pas envoyer.",
                "Prévenez l'administrateur : il renverra le message une fois le compte réparé.",
            ),
            (
                "The school's WhatsApp account could not send.",
                "Tell the administrator: it will be sent again once the account is fixed.",
            ),
        ),
        InvalidMessage => (
            (
                "Le message lui-même a été refusé (contenu ou modèle).",
                "Prévenez l'administrateur (détail technique ci-contre) ; appelez-les si c'est urgent.",
            ),
            (
                "The message itself was refused (its content or template).",
                "Tell the administrator (see the technical detail); call them if it is urgent.",
            ),
        ),
        ServiceTrouble => (
            (
                "Twilio n'a pas pu l'envoyer malgré plusieurs essais.",
                "Demandez à l'administrateur de le renvoyer, ou appelez-les.",
            ),
            (
                "Twilio could not send it despite several tries.",
                "Ask the administrator to send it again, or call them.",
            ),
        ),
        Expired => (
            ("Sa date limite est passée avant qu'il puisse partir.", "Prévenez-les autrement si c'est encore utile."),
            ("Its deadline passed before it could go.", "Tell them another way if it still matters."),
        ),
        NotDelivered => (
            ("WhatsApp n'a pas pu le remettre sur leur téléphone.", "Appelez-les."),
            ("WhatsApp could not get it to their phone.", "Call them."),
        ),
        Other => (
            ("Il n'a pas pu être envoyé.", "Appelez-les, et prévenez l'administrateur."),
            ("It could not be sent.", "Call them, and tell the administrator."),
        ),
    };
    let (why, what_to_do) = match lang {
        Lang::Fr => fr,
        Lang::En => en,
    };
    ReasonWords { why, what_to_do }
}

/// Every reason, for the tests that check each has words.
pub const ALL_REASONS: [Reason; 21] = [
    Reason::NoConsent,
    Reason::DeclinedInSchoolFile,
    Reason::AskedToStop,
    Reason::OptedOut,
    Reason::Erased,
    Reason::AgreedSince,
    Reason::InvalidNumber,
    Reason::NotMobile,
    Reason::NotOnWhatsApp,
    Reason::Blocked,
    Reason::WindowClosed,
    Reason::HeldByWhatsApp,
    Reason::RecipientRefused,
    Reason::Unreachable,
    Reason::Filtered,
    Reason::AccountProblem,
    Reason::InvalidMessage,
    Reason::ServiceTrouble,
    Reason::Expired,
    Reason::NotDelivered,
    Reason::Other,
];

/// A history action's name (the Campaigns item's `history`), or `None` for one this page
/// does not know (shown as it is).
pub fn history_action(lang: Lang, action: &str) -> Option<&'static str> {
    let (fr, en) = match action {
        "created" => ("Envoi lancé", "Sending started"),
        "cancelled" => ("Campagne annulée", "Campaign cancelled"),
        "resumed" => ("Annulation levée", "Cancellation undone"),
        "enqueued" => ("Messages ajoutés", "Messages added"),
        "requeued" => ("Messages en échec renvoyés", "Failed messages sent again"),
        _ => return None,
    };
    Some(match lang {
        Lang::Fr => fr,
        Lang::En => en,
    })
}

/// A language's name, for the messages-by-language section (the code itself when unknown).
pub fn language_name(lang: Lang, code: &str) -> String {
    let (fr, en) = match code {
        "fr" => ("français", "French"),
        "en" => ("anglais", "English"),
        "ar" => ("arabe", "Arabic"),
        "es" => ("espagnol", "Spanish"),
        "pt" => ("portugais", "Portuguese"),
        "tr" => ("turc", "Turkish"),
        "de" => ("allemand", "German"),
        "it" => ("italien", "Italian"),
        "uk" => ("ukrainien", "Ukrainian"),
        "ru" => ("russe", "Russian"),
        "zh" => ("chinois", "Chinese"),
        _ => return code.to_owned(),
    };
    match lang {
        Lang::Fr => fr,
        Lang::En => en,
    }
    .to_owned()
}

// ---- sentences with numbers, and formats ---------------------------------------------------

/// Narrow no-break space: French puts it between thousands and before `%` and `:`.
const NNBSP: char = '\u{202f}';

impl Lang {
    /// `1 234` (French) or `1,234` (English).
    pub fn number(self, n: u64) -> String {
        let digits = n.to_string();
        let separator = match self {
            Lang::Fr => NNBSP,
            Lang::En => ',',
        };
        let mut out = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(separator);
            }
            out.push(c);
        }
        out
    }

    /// `part` of `whole` as a whole percentage (`45 %`, `45%`); `–` when `whole` is 0.
    pub fn percent(self, part: u64, whole: u64) -> String {
        if whole == 0 {
            return "–".into();
        }
        let value = (part as f64 * 100.0 / whole as f64).round() as u64;
        match self {
            Lang::Fr => format!("{value}{NNBSP}%"),
            Lang::En => format!("{value}%"),
        }
    }

    /// The summary under the title: how many messages reached the phones.
    pub fn summary(self, delivered: u64, base: u64) -> String {
        let (d, b) = (self.number(delivered), self.number(base));
        match self {
            Lang::Fr => format!("Sur {b} messages, {d} sont arrivés sur le téléphone des parents."),
            Lang::En => format!("Of {b} messages, {d} reached the parents' phones."),
        }
    }

    /// `by Jane` / `par Jane`.
    pub fn by(self, who: &str) -> String {
        match self {
            Lang::Fr => format!("par {who}"),
            Lang::En => format!("by {who}"),
        }
    }

    /// Someone's words, quoted: `« … »` (with no-break spaces) or `“…”`.
    pub fn quote(self, text: &str) -> String {
        match self {
            Lang::Fr => format!("«\u{a0}{text}\u{a0}»"),
            Lang::En => format!("“{text}”"),
        }
    }

    /// The number of attachments of a reply.
    pub fn attachments(self, n: u32) -> String {
        match (self, n) {
            (Lang::Fr, 1) => "1 pièce jointe".into(),
            (Lang::Fr, n) => format!("{n} pièces jointes"),
            (Lang::En, 1) => "1 attachment".into(),
            (Lang::En, n) => format!("{n} attachments"),
        }
    }

    /// The number of families that have not answered the buttons.
    pub fn not_answered(self, n: u64) -> String {
        let n_text = self.number(n);
        match (self, n) {
            (Lang::Fr, 1) => "1 famille jointe n'a pas encore répondu.".into(),
            (Lang::Fr, _) => format!("{n_text} familles jointes n'ont pas encore répondu."),
            (Lang::En, 1) => "1 family reached has not answered yet.".into(),
            (Lang::En, _) => format!("{n_text} families reached have not answered yet."),
        }
    }

    /// When and how the page was made, with the time zone of its times.
    pub fn footer(self, date: &str, zone: &str) -> String {
        match self {
            Lang::Fr => format!(
                "Établi par Missive le {date} (heure de {zone}). Les chiffres changent tant que des messages sont en \
                 cours."
            ),
            Lang::En => {
                format!("Made by Missive on {date} ({zone} time). Figures change while messages are on their way.")
            }
        }
    }

    /// A Unix time as a date and time people read, in `zone`: `3 décembre 2026 à 08:05`,
    /// `3 December 2026 at 08:05`.
    pub fn date_time(self, seconds: i64, zone: chrono_tz::Tz) -> String {
        let Some(utc) = chrono::DateTime::from_timestamp(seconds, 0) else {
            return "–".into();
        };
        let local = zone.from_utc_datetime(&utc.naive_utc());
        const FR_MONTHS: [&str; 12] = [
            "janvier",
            "février",
            "mars",
            "avril",
            "mai",
            "juin",
            "juillet",
            "août",
            "septembre",
            "octobre",
            "novembre",
            "décembre",
        ];
        const EN_MONTHS: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        let month = local.month0() as usize;
        let (day, year, hour, minute) = (local.day(), local.year(), local.hour(), local.minute());
        match self {
            Lang::Fr => format!("{day} {} {year} à {hour:02}:{minute:02}", FR_MONTHS[month]),
            Lang::En => format!("{day} {} {year} at {hour:02}:{minute:02}", EN_MONTHS[month]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use missive::domain::status::Status;

    #[test]
    fn every_status_of_the_design_has_words_in_both_languages() {
        let names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
        for name in &names {
            assert!(STATUS_ORDER.contains(name), "{name} is not in STATUS_ORDER");
        }
        assert_eq!(STATUS_ORDER.len(), names.len(), "STATUS_ORDER lists a status the design does not have");
        for name in STATUS_ORDER {
            let fr = status_words(Lang::Fr, name).unwrap_or_else(|| panic!("{name}: no French words"));
            let en = status_words(Lang::En, name).unwrap_or_else(|| panic!("{name}: no English words"));
            assert_eq!(fr.tone, en.tone);
            for text in [fr.label, fr.meaning, en.label, en.meaning] {
                assert!(!text.trim().is_empty(), "{name}");
                assert!(!text.contains('_'), "{name}: jargon in {text:?}");
            }
            assert_ne!(fr.meaning, en.meaning, "{name}: not translated");
        }
        assert_eq!(status_words(Lang::Fr, "in_doubt").unwrap().label, "En attente de confirmation");
        assert!(status_words(Lang::En, "in_doubt").unwrap().meaning.starts_with("Waiting for Twilio's confirmation"));
        assert_eq!(status_words(Lang::En, "no_such_status"), None);
    }

    #[test]
    fn every_reason_has_words_in_both_languages() {
        for reason in ALL_REASONS {
            let (fr, en) = (reason_words(Lang::Fr, reason), reason_words(Lang::En, reason));
            for text in [fr.why, fr.what_to_do, en.why, en.what_to_do] {
                assert!(!text.trim().is_empty(), "{reason:?}");
            }
            assert_ne!(fr.why, en.why, "{reason:?}: not translated");
        }
    }

    #[test]
    fn the_fixed_words_are_translated() {
        let (fr, en) = (FR.fields(), EN.fields());
        assert_eq!(fr.len(), en.len());
        for ((name, fr_text), (_, en_text)) in fr.iter().zip(&en) {
            assert!(!fr_text.trim().is_empty() && !en_text.trim().is_empty(), "{name} is empty");
            // "Message" is the same word in both languages.
            if *name != "col_message" {
                assert_ne!(fr_text, en_text, "{name} is not translated");
            }
        }
    }

    #[test]
    fn numbers_percentages_and_dates_follow_the_language() {
        assert_eq!(Lang::Fr.number(1234567), "1\u{202f}234\u{202f}567");
        assert_eq!(Lang::En.number(1234567), "1,234,567");
        assert_eq!(Lang::En.number(12), "12");
        assert_eq!(Lang::Fr.percent(5, 11), "45\u{202f}%");
        assert_eq!(Lang::En.percent(5, 11), "45%");
        assert_eq!(Lang::En.percent(0, 0), "–");
        // 2026-12-03T07:05:00Z is 08:05 in Paris (winter), 07:05 in London.
        let t = 1_796_281_500;
        assert_eq!(Lang::Fr.date_time(t, chrono_tz::Europe::Paris), "3 décembre 2026 à 08:05");
        assert_eq!(Lang::En.date_time(t, chrono_tz::Europe::London), "3 December 2026 at 07:05");
        assert_eq!(Lang::parse(" EN "), Ok(Lang::En));
        assert!(Lang::parse("de").unwrap_err().contains("expected fr or en"));
    }
}
