"""People: invitations, roles, deactivation, deletion and groups. Validated, atomic, audited.

The last active admin can be neither demoted, deactivated nor deleted. Every change to who is
an admin takes one lock first, so two admins demoting each other at once cannot both succeed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import smtplib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditAction
from audit.services import audit_record
from lib.locks import serialize_in_transaction
from lib.text import validate_plain_text
from tokens.models import TokenKind
from tokens.services import tokens_revoke_for_user

from .models import Invitation, Role

logger = logging.getLogger(__name__)

ADMINS_LOCK = "accounts.admins"
MAX_INVITATION_DAYS = 30


def _user_model() -> Any:
    return get_user_model()


# -- invitations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewInvitation:
    invitation: Invitation
    token: str
    # Why the e-mail asked for was not sent (no mail server, say); empty: sent, or not asked.
    mail_problem: str = ""

    def __repr__(self) -> str:
        return f"NewInvitation(invitation={self.invitation!r}, token='********')"

    __str__ = __repr__


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def validate_username(username: str) -> str:
    username = validate_plain_text(username, what="The username").strip()
    if not username:
        raise ValidationError("Enter a username.")
    if len(username) > 150:
        raise ValidationError("A username has at most 150 characters.")
    UnicodeUsernameValidator()(username)
    if _user_model().objects.filter(username__iexact=username).exists():
        raise ValidationError(f"The username {username!r} is taken.")
    return username


@transaction.atomic
def invitation_create(
    *,
    email: str = "",
    username: str = "",
    role: Role | str = Role.DEVELOPER,
    groups: list[Group] | tuple[Group, ...] = (),
    days: int = 7,
    actor: Any,
    send_to: str = "",
) -> NewInvitation:
    """An invitation for ``email`` and/or ``username``; ``send_to`` (a link base) e-mails it."""
    email = validate_plain_text(email or "", what="The e-mail address").strip()
    if email:
        validate_email(email)
        if _user_model().objects.filter(email__iexact=email).exists():
            raise ValidationError({"email": f"{email} already has an account."})
    if username:
        try:
            username = validate_username(username)
        except ValidationError as error:
            raise ValidationError({"username": error.messages}) from None
    if not email and not username:
        raise ValidationError("Give an e-mail address or a username.")
    if not 1 <= days <= MAX_INVITATION_DAYS:
        raise ValidationError({"days": f"An invitation lasts 1 to {MAX_INVITATION_DAYS} days."})
    lookup_id = secrets.token_hex(6)
    token = f"{lookup_id}.{secrets.token_urlsafe(32)}"
    invitation = Invitation.objects.create(
        email=email,
        username=username,
        role=Role(role),
        lookup_id=lookup_id,
        secret_hash=_hash(token),
        created_by=actor if getattr(actor, "pk", None) else None,
        expires_at=timezone.now() + timedelta(days=days),
    )
    invitation.groups.set(groups)
    audit_record(
        actor=actor,
        action=AuditAction.CREATE,
        obj=invitation,
        object_repr=f"Invitation for {invitation.who} ({invitation.get_role_display()})",
        changes={
            "email": [None, invitation.email or None],
            "username": [None, invitation.username or None],
            "role": [None, invitation.get_role_display()],
            "groups": [None, ", ".join(sorted(g.name for g in groups)) or None],
        },
    )
    mail_problem = ""
    if send_to and email:
        mail_problem = _send_invitation(invitation, f"{send_to.rstrip('/')}/invite/{token}/")
    return NewInvitation(invitation, token, mail_problem)


def _send_invitation(invitation: Invitation, link: str) -> str:
    """E-mail the link; what went wrong, in words, if it could not be sent. The invitation
    stands either way: its link is shown to whoever made it."""
    try:
        send_mail(
            "You are invited to the LLM Control Plane",
            f"You have been invited to use the LLM Control Plane.\n\nCreate your account here "
            f"(the link works once, until {invitation.expires_at:%Y-%m-%d %H:%M} UTC):\n\n"
            f"{link}\n",
            settings.DEFAULT_FROM_EMAIL,
            [invitation.email],
        )
    except (OSError, smtplib.SMTPException) as error:
        logger.warning("invitation e-mail not sent: %s", type(error).__name__)
        return (
            f"The e-mail could not be sent ({type(error).__name__}: is a mail server "
            "configured? See EMAIL_HOST). Share the link yourself."
        )
    return ""


def invitation_for(token: str) -> Invitation | None:
    lookup_id, _, _ = token.partition(".")
    if len(lookup_id) != 12 or not lookup_id.isalnum():
        return None
    invitation = Invitation.objects.filter(lookup_id=lookup_id).first()
    if invitation is None or not hmac.compare_digest(_hash(token), invitation.secret_hash):
        return None
    return invitation


UNUSABLE = {
    "accepted": "This invitation was already used. Sign in instead, or ask for a new one.",
    "revoked": "This invitation was withdrawn. Ask an administrator for a new one.",
    "expired": "This invitation has expired. Ask an administrator for a new one.",
}


@transaction.atomic
def invitation_accept(*, token: str, username: str, password: str) -> Any:
    """Create the invited account; the invitation works once (locked while it is used)."""
    found = invitation_for(token)
    if found is None:
        raise ValidationError("This invitation link is not valid.")
    invitation = Invitation.objects.select_for_update().get(pk=found.pk)
    state = invitation.state()
    if state != "pending":
        raise ValidationError(UNUSABLE[state])
    try:
        username = validate_username(username)
    except ValidationError as error:
        raise ValidationError({"username": error.messages}) from None
    user = _user_model()(username=username, email=invitation.email)
    try:
        validate_password(password, user)
    except ValidationError as error:
        raise ValidationError({"password1": error.messages}) from None
    user.set_password(password)
    user.is_staff = user.is_superuser = invitation.role == Role.ADMIN
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:
        raise ValidationError({"username": f"The username {username!r} is taken."}) from None
    user.groups.set(invitation.groups.all())
    invitation.accepted_at, invitation.accepted_by = timezone.now(), user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_record(
        actor=user,
        action=AuditAction.CREATE,
        obj=user,
        object_repr=f"{user.get_username()} (accepted an invitation)",
        changes={
            "username": [None, user.get_username()],
            "email": [None, user.email or None],
            "role": [None, invitation.get_role_display()],
            "groups": [None, ", ".join(sorted(g.name for g in user.groups.all())) or None],
        },
    )
    return user


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: Any) -> bool:
    updated = Invitation.objects.filter(
        pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=timezone.now())
    if updated:
        audit_record(
            actor=actor,
            action=AuditAction.REVOKE,
            obj=invitation,
            object_repr=f"Invitation for {invitation.who}",
        )
    return bool(updated)


# -- roles, deactivation, deletion ------------------------------------------------------------


def _other_active_admins(user: Any) -> bool:
    return _user_model().objects.filter(is_active=True, is_staff=True).exclude(pk=user.pk).exists()


def _guard_last_admin(user: Any, doing: str) -> None:
    if user.is_active and user.is_staff and not _other_active_admins(user):
        raise ValidationError(
            f"{user.get_username()} is the last active admin and cannot be {doing}. Make "
            "someone else an admin first."
        )


def _locked(user: Any) -> Any:
    serialize_in_transaction(ADMINS_LOCK)
    return _user_model().objects.select_for_update().get(pk=user.pk)


@transaction.atomic
def user_set_role(*, user: Any, role: Role | str, actor: Any) -> bool:
    role = Role(role)
    user = _locked(user)
    admin = role == Role.ADMIN
    if user.is_staff == admin:
        return False
    if not admin:
        _guard_last_admin(user, "demoted")
    user.is_staff = user.is_superuser = admin
    user.save(update_fields=["is_staff", "is_superuser"])
    audit_record(
        actor=actor,
        action=AuditAction.UPDATE,
        obj=user,
        object_repr=user.get_username(),
        changes={"role": [(Role.DEVELOPER if admin else Role.ADMIN).label, role.label]},
    )
    return True


@transaction.atomic
def user_deactivate(*, user: Any, actor: Any) -> bool:
    """Signs them out everywhere and revokes their tokens; history, usage and their personal
    keys are kept (unused while deactivated)."""
    user = _locked(user)
    if not user.is_active:
        return False
    _guard_last_admin(user, "deactivated")
    user.is_active = False
    user.save(update_fields=["is_active"])
    tokens_revoke_for_user(user=user, actor=actor)
    audit_record(
        actor=actor,
        action=AuditAction.UPDATE,
        obj=user,
        object_repr=user.get_username(),
        changes={"is_active": [True, False]},
    )
    return True


@transaction.atomic
def user_reactivate(*, user: Any, actor: Any) -> bool:
    user = _locked(user)
    if user.is_active:
        return False
    user.is_active = True
    user.save(update_fields=["is_active"])
    audit_record(
        actor=actor,
        action=AuditAction.UPDATE,
        obj=user,
        object_repr=user.get_username(),
        changes={"is_active": [False, True]},
    )
    return True


def deletion_summary(user: Any) -> list[str]:
    """What goes with a user, in words; usage history stays (with their name on it)."""
    from chats.models import Chat
    from tokens.models import ApiToken
    from userkeys.models import UserKey

    counts = [
        (Chat.objects.filter(owner=user).count(), "chat", "chats"),
        (ApiToken.objects.filter(user=user, kind=TokenKind.API).count(), "API token", "API tokens"),
        (UserKey.objects.filter(user=user).count(), "personal API key", "personal API keys"),
    ]
    return [f"{n} {one if n == 1 else many}" for n, one, many in counts if n]


@transaction.atomic
def user_delete(*, user: Any, actor: Any) -> None:
    user = _locked(user)
    if getattr(actor, "pk", None) == user.pk:
        raise ValidationError("You cannot delete your own account.")
    _guard_last_admin(user, "deleted")
    audit_record(actor=actor, action=AuditAction.DELETE, obj=user, object_repr=user.get_username())
    user.delete()


# -- groups -----------------------------------------------------------------------------------


def validate_group_name(name: str, *, current: Group | None = None) -> str:
    name = validate_plain_text(name, what="The group name").strip()
    if not name:
        raise ValidationError({"name": "Give the group a name."})
    if len(name) > 150:
        raise ValidationError({"name": "A group name has at most 150 characters."})
    taken = Group.objects.filter(name__iexact=name)
    if current is not None:
        taken = taken.exclude(pk=current.pk)
    if taken.exists():
        raise ValidationError({"name": f"A group named {name!r} exists already."})
    return name


@transaction.atomic
def group_create(*, name: str, actor: Any) -> Group:
    name = validate_group_name(name)
    try:
        with transaction.atomic():
            group = Group.objects.create(name=name)
    except IntegrityError:
        raise ValidationError({"name": f"A group named {name!r} exists already."}) from None
    audit_record(
        actor=actor, action=AuditAction.CREATE, obj=group, changes={"name": [None, group.name]}
    )
    return group


@transaction.atomic
def group_rename(*, group: Group, name: str, actor: Any) -> Group:
    name = validate_group_name(name, current=group)
    old = group.name
    group.name = name
    try:
        with transaction.atomic():
            group.save(update_fields=["name"])
    except IntegrityError:
        raise ValidationError({"name": f"A group named {name!r} exists already."}) from None
    audit_record(
        actor=actor,
        action=AuditAction.UPDATE,
        obj=group,
        object_repr=name,
        changes={"name": [old, name]},
    )
    return group


@transaction.atomic
def group_delete(*, group: Group, actor: Any) -> None:
    audit_record(actor=actor, action=AuditAction.DELETE, obj=group)
    group.delete()


@transaction.atomic
def group_add_member(*, group: Group, user: Any, actor: Any) -> bool:
    if group.user_set.filter(pk=user.pk).exists():
        return False
    group.user_set.add(user)
    audit_record(
        actor=actor,
        action=AuditAction.UPDATE,
        obj=group,
        object_repr=group.name,
        changes={"members": [None, f"+ {user.get_username()}"]},
    )
    return True


@transaction.atomic
def group_remove_member(*, group: Group, user: Any, actor: Any) -> bool:
    if not group.user_set.filter(pk=user.pk).exists():
        return False
    group.user_set.remove(user)
    audit_record(
        actor=actor,
        action=AuditAction.UPDATE,
        obj=group,
        object_repr=group.name,
        changes={"members": [f"- {user.get_username()}", None]},
    )
    return True


@transaction.atomic
def groups_sync(*, user: Any, names: list[str]) -> None:
    """Single sign-on: make the user's groups exactly those named by their identity provider
    (creating groups that do not exist yet)."""
    wanted = []
    for name in names:
        clean = " ".join(str(name).split())[:150]
        if clean and not any(ch in clean for ch in "\x00"):
            wanted.append(Group.objects.get_or_create(name=clean)[0])
    current = set(user.groups.all())
    if set(wanted) != current:
        user.groups.set(wanted)
        audit_record(
            actor=user,
            action=AuditAction.UPDATE,
            obj=user,
            object_repr=f"{user.get_username()}: groups from single sign-on",
            changed_fields=["groups"],
        )
