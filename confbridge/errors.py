"""Errors of the conference service; each carries the HTTP status the REST API answers with, and the SIP status
a caller dialling in is refused with."""

from __future__ import annotations


class ConfbridgeError(Exception):
    """Base class: a request the service cannot carry out, with the HTTP status that says why."""

    status = 500
    sip_status = 404
    """A caller whose call the service refuses hears this: by default the conference is not there to join."""


class InvalidRequest(ConfbridgeError):
    """Malformed or impossible input (bad JSON, bad UUID, missing field, wrong state for an action)."""

    status = 400


class Unauthorized(ConfbridgeError):
    """No token, or a token nobody owns."""

    status = 401


class NotFound(ConfbridgeError):
    """No such resource for this customer (another customer's resource is not found either)."""

    status = 404


class Conflict(ConfbridgeError):
    """The resource's current status does not allow the action."""

    status = 409


class Unavailable(ConfbridgeError):
    """A resource of the server itself ran out (RTP ports, say)."""

    status = 503


class ConferenceFull(Conflict):
    """A `connect` conference already has its two participants (a SIP caller hears 486 Busy Here)."""

    sip_status = 486
