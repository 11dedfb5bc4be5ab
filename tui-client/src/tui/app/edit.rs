//! F4 in the app: which file to edit and how, the editor's and the
//! check's news, the "remote changed" answer, and the upload's end.

use crossterm::event::KeyEvent;
use ferry_proto::msg::EntryKind;

use super::{App, Link};
use crate::tui::action::Effect;
use crate::tui::dialog::Dialog;
use crate::tui::edit::{
    EditChoice, EditDialog, EditNews, EditSession, EditTarget, EditWork, Verdict, EDIT_LIMIT,
};
use crate::tui::pane::Side;

/// Edits under way.
#[derive(Debug, Default)]
pub struct Edits {
    /// The remote file being fetched, edited, checked or uploaded.
    pub busy: Option<String>,
    /// "Changed on the server" questions that wait for another dialog to
    /// close (a background news never replaces an open dialog).
    pub waiting: Vec<EditDialog>,
    /// Copies left for later (Esc, a failed upload or check): F4 on the
    /// same remote file checks it again, and uploads it or asks.
    pub later: Vec<EditSession>,
}

impl App {
    /// F4: edits the file under the cursor (a local one in place, a remote
    /// one through a private copy).
    pub(super) fn start_edit(&mut self) -> Vec<Effect> {
        let side = self.focused_side();
        let e = self.pane(side).current().cloned();
        if let Some(e) = e.as_ref().filter(|_| side == Side::Remote) {
            let remote = self.join(Side::Remote, &e.name);
            let at = self.edit.later.iter().position(|s| s.remote == remote);
            if let Some(at) = at.filter(|_| self.edit.busy.is_none()) {
                let session = self.edit.later.remove(at);
                self.edit.busy = Some(session.name.clone());
                self.info(format!("checking your kept copy of {}…", session.name));
                return vec![Effect::Edit(EditWork::Check {
                    session,
                    failed: None,
                })];
            }
        }
        if let Some(name) = &self.edit.busy {
            let text = format!(
                "still busy editing {name} (its copy is not uploaded yet): F4 again once it is"
            );
            self.info(text);
            return vec![];
        }
        let Some(e) = e.filter(|e| e.kind != EntryKind::Dir) else {
            self.info("F4 edits files (Enter opens a directory)");
            return vec![];
        };
        match (side, e.kind) {
            (Side::Local, _) => {
                let path = self.local_dir.join(&e.name);
                vec![Effect::Edit(EditWork::Run(EditTarget::Local(path)))]
            }
            (Side::Remote, EntryKind::File) => {
                if !matches!(self.link, Link::Online(_)) {
                    self.error("not connected");
                    return vec![];
                }
                if e.size > EDIT_LIMIT {
                    self.error(format!(
                        "{} is {} MiB: F4 edits files up to {} MiB (F5 copies it to edit it locally)",
                        e.name,
                        e.size >> 20,
                        EDIT_LIMIT >> 20
                    ));
                    return vec![];
                }
                self.edit.busy = Some(e.name.clone());
                self.info(format!("fetching {} to edit it…", e.name));
                vec![Effect::Edit(EditWork::Fetch {
                    remote: self.join(Side::Remote, &e.name),
                    dir: self.dir_of(Side::Remote),
                    name: e.name,
                })]
            }
            (Side::Remote, _) => {
                self.info("F4 edits regular files (this is a link: edit what it points to)");
                vec![]
            }
        }
    }

    /// News of an edit.
    pub(super) fn edit_news(&mut self, news: EditNews) -> Vec<Effect> {
        match news {
            EditNews::Fetched(Ok(session)) => {
                vec![Effect::Edit(EditWork::Run(EditTarget::Remote(session)))]
            }
            EditNews::Fetched(Err(e)) => {
                self.edit.busy = None;
                self.error(e);
                vec![]
            }
            EditNews::Exited {
                target: EditTarget::Local(path),
                result,
            } => {
                match result {
                    Ok(()) => self.info(format!("edited {}", path.display())),
                    Err(e) => self.error(e),
                }
                self.refresh(Side::Local)
            }
            EditNews::Exited {
                target: EditTarget::Remote(session),
                result,
            } => {
                self.info(format!("checking {}…", session.name));
                vec![Effect::Edit(EditWork::Check {
                    session,
                    failed: result.err(),
                })]
            }
            EditNews::Checked {
                session,
                failed,
                result,
            } => {
                self.edit.busy = None;
                self.checked(session, failed, result)
            }
            EditNews::Uploaded {
                session,
                to,
                result,
            } => {
                self.edit.busy = None;
                self.uploaded(session, to, result)
            }
        }
    }

    fn checked(
        &mut self,
        session: EditSession,
        failed: Option<String>,
        result: Result<(Verdict, String), String>,
    ) -> Vec<Effect> {
        let kept = format!("your copy is kept at {}", session.file.display());
        match (failed, result) {
            (_, Err(e)) => {
                self.error(format!(
                    "{e}: nothing uploaded; {kept} (F4 on {} tries again)",
                    session.name
                ));
                self.keep_later(session);
                vec![]
            }
            (Some(why), Ok((Verdict::Unchanged, _))) => {
                self.error(format!("{why}: nothing uploaded"));
                vec![Effect::Edit(EditWork::Discard(session))]
            }
            (Some(why), Ok(_)) => {
                self.error(format!("{why}: nothing uploaded; {kept}"));
                vec![]
            }
            (None, Ok((Verdict::Unchanged, _))) => {
                self.info(format!(
                    "{} was not changed: nothing uploaded",
                    session.name
                ));
                vec![Effect::Edit(EditWork::Discard(session))]
            }
            (None, Ok((Verdict::RemoteChanged(why), spare))) => {
                self.ask_edit(EditDialog {
                    session,
                    why,
                    spare,
                });
                vec![]
            }
            // The runtime uploads an unfailed edit at once.
            (None, Ok(_)) => vec![],
        }
    }

    /// Asks what to do with a copy whose remote changed: now, or once the
    /// open dialog closes (the message line says where the copy is).
    /// Until it is answered the copy is also in `later`: a dialog that
    /// replaces this one does not lose the way back.
    fn ask_edit(&mut self, d: EditDialog) {
        self.keep_later(d.session.clone());
        if self.dialog.is_some() {
            self.info(format!(
                "{} changed on the server: your copy is kept at {}; asked once this dialog closes",
                d.session.name,
                d.session.file.display()
            ));
            self.edit.waiting.push(d);
        } else {
            self.message = None;
            self.dialog = Some(Dialog::Edit(d));
        }
    }

    /// With no dialog open, the first waiting edit question shows.
    pub(super) fn edit_waiting(&mut self) {
        if self.dialog.is_none() && !self.edit.waiting.is_empty() {
            let d = self.edit.waiting.remove(0);
            self.ask_edit(d);
        }
    }

    /// The connection was lost with the edit question open: it waits for
    /// the reconnect dialog to close, and the message says where the copy is.
    pub(super) fn edit_disconnected(&mut self, d: EditDialog) {
        self.info(format!(
            "nothing uploaded; your copy of {} is kept at {}",
            d.session.name,
            d.session.file.display()
        ));
        self.edit.waiting.insert(0, d);
    }

    /// The upload's end: the copy goes once verified; otherwise it stays,
    /// and the message says where (F4 on the file offers the upload again).
    fn uploaded(
        &mut self,
        session: EditSession,
        to: String,
        result: Result<(), String>,
    ) -> Vec<Effect> {
        match result {
            Ok(()) => {
                self.info(format!("{to} saved on the server (verified)"));
                let mut fx = vec![Effect::Edit(EditWork::Discard(session))];
                fx.extend(self.refresh(Side::Remote));
                fx
            }
            Err(e) => {
                self.error(format!(
                    "the upload failed: {e}; your copy is kept at {} (F4 on {} tries again)",
                    session.file.display(),
                    session.name
                ));
                self.keep_later(session);
                vec![]
            }
        }
    }

    /// Uploads the edited copy (verified, atomically, at once): over the
    /// remote file, or as `spare` beside it.
    fn upload_edit(&mut self, session: EditSession, spare: Option<String>) -> Vec<Effect> {
        if !matches!(self.link, Link::Online(_)) {
            self.error(format!(
                "not connected: nothing uploaded; your copy is kept at {} (F4 on {} asks again)",
                session.file.display(),
                session.name
            ));
            self.keep_later(session);
            return vec![];
        }
        self.edit.busy = Some(session.name.clone());
        self.info(format!("uploading the edited {}…", session.name));
        vec![Effect::Edit(EditWork::Upload { session, spare })]
    }

    /// Remembers a kept copy for F4 on its remote file (once).
    fn keep_later(&mut self, session: EditSession) {
        self.edit.later.retain(|s| s.remote != session.remote);
        self.edit.later.push(session);
    }

    /// The answer of the "remote changed" dialog.
    pub(super) fn edit_dialog_key(&mut self, d: EditDialog, key: KeyEvent) -> Vec<Effect> {
        let choice = d.key(&key);
        if !matches!(choice, EditChoice::Asking | EditChoice::Leave) {
            self.edit.later.retain(|s| s.remote != d.session.remote);
        }
        match choice {
            EditChoice::Asking => {
                self.dialog = Some(Dialog::Edit(d));
                vec![]
            }
            EditChoice::Overwrite => self.upload_edit(d.session, None),
            EditChoice::KeepBeside => self.upload_edit(d.session, Some(d.spare)),
            EditChoice::Discard => {
                self.info(format!("your changes to {} were discarded", d.session.name));
                vec![Effect::Edit(EditWork::Discard(d.session))]
            }
            EditChoice::Leave => {
                self.info(format!(
                    "nothing uploaded; your copy is kept at {} (F4 on {} asks again)",
                    d.session.file.display(),
                    d.session.name
                ));
                self.keep_later(d.session);
                vec![]
            }
        }
    }
}
