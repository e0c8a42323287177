"""Errors named for the rule that was broken; each message says what to do next.

Adapters map them to answers: the web to an HTTP 4xx page or JSON error, the CLI to one
readable line and a non-zero exit. ``http_status`` is the suggested HTTP status.
"""

from __future__ import annotations


class MesError(Exception):
    """Base class: a rule refused the request. ``str(err)`` is the full, readable message."""

    http_status = 400

    def __init__(self, message: str, *, what_to_do: str = "") -> None:
        self.message = message
        self.what_to_do = what_to_do
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if self.what_to_do:
            return f"{self.message} {self.what_to_do}"
        return self.message


# --- configuration and instance ---------------------------------------------------------


class ConfigurationError(MesError):
    """The instance configuration is missing, unreadable or contradictory."""


class InstanceNotPrivate(ConfigurationError):
    """The instance folder or one of its secrets is open to other users of the host."""


class InstanceExists(MesError):
    """``mes init`` was asked to create an instance where one already exists."""

    http_status = 409


# --- identity and access (21 CFR 11.10(d), (g), 11.300) -----------------------------------


class AuthenticationFailed(MesError):
    """User ID or password is wrong (the attempt counts toward lockout)."""

    http_status = 401


class AccountLocked(MesError):
    """Too many consecutive failed authentications: only an administrator can unlock."""

    http_status = 403


class AccountDeactivated(MesError):
    """The account was deactivated; user IDs are never reactivated for someone else."""

    http_status = 403


class PasswordChangeRequired(MesError):
    """The password was reset by an administrator or has expired."""

    http_status = 403


class WeakPassword(MesError):
    """A new password breaks the password policy; ``reasons`` lists every broken rule."""

    def __init__(self, reasons: list[str], subject: str = "password") -> None:
        self.reasons = reasons
        super().__init__(
            f"The {subject} is not acceptable: " + "; ".join(reasons) + ".",
            what_to_do=f"Choose another {subject}.",
        )


class NotAuthorised(MesError):
    """The actor's roles do not allow this action (21 CFR 11.10(g))."""

    http_status = 403


class SelfAdministrationForbidden(NotAuthorised):
    """Nobody changes their own roles or training (Annex 11 §12.3; PIC/S PI 041 §9.3)."""


class AdministratorSigningForbidden(NotAuthorised):
    """Administration and a GMP signing role are held together where the site does not allow it."""


class LoginRefused(AuthenticationFailed):
    """A login was refused; the words are the same whatever the true reason (no enumeration)."""


class TooManyAttempts(MesError):
    """Too many refused attempts from one source in the current window: wait and retry.

    ``retry_after`` is the number of seconds until the source may try again (the HTTP
    ``Retry-After`` header).
    """

    http_status = 429
    code = "too-many-attempts"

    def __init__(self, message: str, *, retry_after: int, what_to_do: str = "") -> None:
        self.retry_after = retry_after
        super().__init__(message, what_to_do=what_to_do)


class UnknownRole(MesError):
    """A role name that the system does not define."""


class InvalidUsername(MesError):
    """A user ID that does not follow the user ID rules."""


class UsernameTaken(MesError):
    """A user ID that exists or existed: IDs are never reused or reassigned (11.100(a))."""

    http_status = 409


class UnknownUser(MesError):
    """No user has this user ID."""

    http_status = 404


class InvalidInput(MesError):
    """A value that is missing or malformed."""


class NotFound(MesError):
    """The record asked for does not exist."""

    http_status = 404


# --- terminals (21 CFR 11.10(h)) ----------------------------------------------------------


class TerminalNotRegistered(MesError):
    """Signing at a spoke requires a registered workstation."""

    http_status = 403


class TerminalNameTaken(MesError):
    """Terminal names are unique within a site."""

    http_status = 409


# --- e-signatures (21 CFR 11.50, 11.70, 11.200) -------------------------------------------


class SignatureRefused(MesError):
    """A signature could not be applied; nothing was signed."""

    http_status = 403


class SignerMismatch(SignatureRefused):
    """The user ID given in the signature is not the logged-in user (11.200(a)(2))."""


class UnknownBadge(SignatureRefused):
    """The scanned badge is not enrolled, or was revoked (21 CFR 11.300(c))."""

    http_status = 401


class SigningMethodNotAllowed(SignatureRefused):
    """The site's setting does not allow this way of signing (badge + PIN or password)."""


class AttestationRequired(SignatureRefused):
    """The accountability statement must be acknowledged before a first signature (11.10(j))."""


class NotQualified(SignatureRefused):
    """The signer has no current training record for this procedure (11.10(i))."""


class UnknownMeaning(MesError):
    """A signature meaning outside the controlled list."""


class SignatureNotBound(MesError):
    """A signature does not belong to the record it is shown with (11.70)."""


# --- integrity ----------------------------------------------------------------------------


class ChainBroken(MesError):
    """A hash chain failed verification; ``seq`` names the first bad entry."""

    def __init__(self, seq: int, problem: str) -> None:
        self.seq = seq
        self.problem = problem
        super().__init__(
            f"entry {seq}: {problem}",
            what_to_do="Treat the records from this entry on as suspect and raise an incident.",
        )


# --- master recipes: versions and their lifecycle (Annex 11 §10, 21 CFR 11.10(f), (g)) -----


class RecipeVersionExists(MesError):
    """A recipe version number is taken by content that can no longer change."""

    http_status = 409


class RecipeNotEditable(MesError):
    """Content is immutable from review on: a change is a new version with a change reason."""

    http_status = 409


class LifecycleStepRefused(MesError):
    """The version is not in a state where this step is allowed (e.g. effective before approval)."""

    http_status = 409


class SeparationOfDuties(MesError):
    """The same person may not author and review or approve, nor review and approve."""

    http_status = 403


class EffectivityRefused(MesError):
    """The effective date or the versions already effective do not allow this."""

    http_status = 409


# --- recipe bundles (hub → spoke) -------------------------------------------------------


class BundleRefused(MesError):
    """A recipe bundle was not installed; the subclass names why."""

    http_status = 422


class BundleUnreadable(BundleRefused):
    """The file is not a recipe bundle (not a JWS of the expected type)."""


class BundleUnknownKey(BundleRefused):
    """The bundle is signed with a key this spoke does not trust."""


class BundleTampered(BundleRefused):
    """The signature or the content hash does not match: the bundle was altered."""


class BundleWrongSite(BundleRefused):
    """The bundle targets other sites."""


class BundleSuperseded(BundleRefused):
    """A newer version of the recipe is already installed."""


# --- batch execution (21 CFR 11.10(f) sequencing, (g) authority, (i) training) ------------


class BatchRefused(MesError):
    """A batch action was refused; nothing was recorded. The subclass names the broken rule."""

    http_status = 409


class BatchNotActive(BatchRefused):
    """The batch is on hold, complete or aborted: phases cannot be worked on."""


class PhaseOutOfOrder(BatchRefused):
    """The recipe's ordering does not allow this phase yet (11.10(f))."""


class PhaseNotInProgress(BatchRefused):
    """The phase is not in the state this action needs (e.g. recording into a performed phase)."""


class TimerNotElapsed(BatchRefused):
    """The minimum hold after an earlier phase has not passed; ``seconds_left`` says how long."""

    def __init__(self, message: str, *, seconds_left: int, what_to_do: str = "") -> None:
        self.seconds_left = seconds_left
        super().__init__(message, what_to_do=what_to_do)


class PhaseIncomplete(BatchRefused):
    """A phase cannot be signed while values, scans or comments it needs are missing."""

    http_status = 422

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(
            "The phase cannot be signed yet: " + "; ".join(missing) + ".",
            what_to_do="Complete what is listed, then sign.",
        )


class SelfVerificationForbidden(SignatureRefused):
    """Nobody verifies their own work: the verifier must be a different person."""


class StaleRecord(BatchRefused):
    """Someone else changed the record since this page was shown; nothing was recorded."""


class IdentityMismatch(BatchRefused):
    """A scanned label does not match the batch's chain of identity: a hard stop."""

    http_status = 422


class BedsideMismatch(IdentityMismatch):
    """The wristband or the bag's label does not match the batch at the bedside: do not infuse.

    Raised after the mismatch and its deviation are committed, so the page shows the hard stop.
    """

    def __init__(self, message: str, *, what_to_do: str = "", deviation: str = "") -> None:
        self.deviation = deviation
        super().__init__(message, what_to_do=what_to_do)


class BagFromAnotherSite(BatchRefused):
    """The bag scanned at the bedside is not a product of a batch made at this site."""

    http_status = 422


class NotReleasedForInfusion(BatchRefused):
    """The product has not been released by QA (or is not complete): it may not be infused."""

    http_status = 409


class DeviationsOpen(BatchRefused):
    """Deviations must be acknowledged before the batch can complete."""


class BatchIncomplete(BatchRefused):
    """Phases are not done (performed, verified where required, or not applicable)."""


class LoggerFileRefused(InvalidInput):
    """A temperature logger file is not in an accepted form; the message names the line."""

    http_status = 422

    def __init__(self, message: str, *, line: int | None = None, what_to_do: str = "") -> None:
        self.line = line
        super().__init__(
            message,
            what_to_do=what_to_do
            or "Export the logger's readings again as described in docs/recipe-format.md "
            "(temperature_log), then upload that file; nothing was recorded.",
        )


# --- materials and equipment -----------------------------------------------------------------


class MaterialRefused(BatchRefused):
    """A scanned lot cannot be used; the subclass says why."""

    http_status = 422


class UnknownLot(MaterialRefused):
    """No lot with the scanned number is registered at this site."""


class WrongMaterial(MaterialRefused):
    """The lot is of another material than the recipe asks for."""


class LotExpired(MaterialRefused):
    """The lot's expiry date has passed."""


class LotQuarantined(MaterialRefused):
    """The lot has not been released by QA."""


class LotRejected(MaterialRefused):
    """QA rejected the lot."""


class EquipmentRefused(BatchRefused):
    """A scanned instrument cannot be used; the subclass says why."""

    http_status = 422


class UnknownEquipment(EquipmentRefused):
    """No instrument with the scanned ID is registered at this site."""


class WrongEquipmentClass(EquipmentRefused):
    """The instrument is not of the class the recipe asks for."""


class EquipmentOutOfService(EquipmentRefused):
    """The instrument is out of service."""


class EquipmentNotClean(EquipmentRefused):
    """The instrument is not clean."""


class EquipmentInUse(EquipmentRefused):
    """The instrument is in use by another batch."""


class CalibrationOverdue(EquipmentRefused):
    """The instrument's calibration due date has passed."""


# --- hub ↔ spoke sync ----------------------------------------------------------------------


class SyncRefused(MesError):
    """A sync request, chunk or enrollment was refused; the subclass names why.

    ``code`` is the stable machine-readable name sent in the JSON error (and in the OpenAPI
    document), so a spoke can tell a gap it can repair from a refusal a person must look at.
    """

    http_status = 422
    code = "sync-refused"


class EnrollmentRefused(SyncRefused):
    """The one-time enrollment code is unknown, used, expired or for another site."""

    http_status = 403
    code = "enrollment-refused"


class RequestUnauthenticated(SyncRefused):
    """The request's signature headers are missing, wrong, stale or from an unknown key.

    ``clock_offset_seconds``: set when the request is refused as stale although its signature
    verified — its timestamp minus the hub's clock (positive: the spoke's clock is ahead).
    """

    http_status = 401
    code = "unauthenticated"

    def __init__(
        self, message: str, *, what_to_do: str = "", clock_offset_seconds: float | None = None
    ) -> None:
        self.clock_offset_seconds = clock_offset_seconds
        super().__init__(message, what_to_do=what_to_do)


class RequestReplayed(SyncRefused):
    """The request's nonce was seen before: the same request was sent twice."""

    http_status = 409
    code = "replayed"


class SpokeNotActive(SyncRefused):
    """The spoke is suspended or revoked at the hub (or not enrolled yet)."""

    http_status = 403
    code = "spoke-not-active"


class ChunkUnreadable(SyncRefused):
    """The body is not a batch-record chunk this hub understands."""

    code = "chunk-unreadable"


class ChunkTampered(SyncRefused):
    """The chunk's signature, an entry's hash or an entry's signature does not verify."""

    code = "chunk-tampered"


class ChunkGap(SyncRefused):
    """The chunk does not continue the chain the hub holds (entries missing before it).

    ``last_seq``/``last_hash`` say where the hub's copy ends, so the spoke resends from there.
    """

    http_status = 409
    code = "chain-gap"

    def __init__(
        self, message: str, *, last_seq: int, last_hash: str | None, what_to_do: str = ""
    ) -> None:
        self.last_seq = last_seq
        self.last_hash = last_hash
        super().__init__(message, what_to_do=what_to_do)


class ChunkConflict(SyncRefused):
    """The chunk contradicts entries the hub already holds (a forked chain)."""

    http_status = 409
    code = "chain-conflict"


class RecipeNotDeployed(SyncRefused):
    """The batch was made with a recipe version the hub never deployed to that spoke."""

    code = "recipe-not-deployed"


class TooLarge(SyncRefused):
    """The request body is larger than the hub accepts."""

    http_status = 413
    code = "too-large"


# --- chain of custody (mes.core.custody) -----------------------------------------------------


class CustodyRefused(BatchRefused):
    """A custody transfer was refused; nothing was recorded. The subclass names the broken rule."""


class SelfCustodyTransfer(CustodyRefused):
    """The same person cannot both hand over and receive: custody passes between two people."""


class NotInCustody(CustodyRefused):
    """The handing-over side does not hold the material, as the chain of custody so far says."""


class ProductNotReleased(CustodyRefused):
    """The final product leaves the site only after QA released the batch."""
