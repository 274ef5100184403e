//! The texts the webhook answers a parent's keyword with, in French and English (TwiML).

/// The reply to an opt-out keyword.
pub const OPT_OUT_REPLY: &str = "Vous ne recevrez plus de messages de l'école sur WhatsApp. \
     Répondez START pour les recevoir de nouveau. / You will no longer receive messages from the school \
     on WhatsApp. Reply START to receive them again.";
/// The reply to an opt-in keyword.
pub const OPT_IN_REPLY: &str = "Vous recevrez de nouveau les messages de l'école sur WhatsApp. \
     Répondez STOP pour ne plus les recevoir. / You will receive messages from the school on WhatsApp \
     again. Reply STOP to stop receiving them.";
/// The reply to HELP.
pub const HELP_REPLY: &str = "Pour ne plus recevoir les messages de l'école, répondez STOP (ou ARRÊT) ; \
     pour les recevoir de nouveau, répondez START. / To stop receiving messages from the school, reply \
     STOP; to receive them again, reply START.";
