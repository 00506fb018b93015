"""Handing a conversation to a person through a ticket system, exactly once and nothing lost.

1. :class:`~core.handoff.service.Handoffs` is the core's ``TicketProvider``: a handoff is
   written to the outbox first (one open ticket per conversation, a database constraint),
   then delivered once while the user waits a moment; when the ticket system is down the
   user is told the request is queued, and the delivery worker
   (:class:`~core.handoff.worker.DeliveryWorker`, one per replica) retries with exponential
   backoff and jitter, honouring ``Retry-After``, across restarts.
2. What the ticket says (:mod:`core.handoff.content`): the question, the thread's
   transcript as far as memory holds it, the answer with its citations, mode and notices,
   the request id and trace link, the asker, a link back to the thread and the trigger,
   every text field redacted as the settings say.
3. What comes back (:mod:`core.handoff.events`): agents' public comments and status
   changes are posted into the thread the request came from (through the conversation
   layer's ``Outbound``), internal notes never; first response and resolution times are
   written to the request's trace. The built-in queue's agents reply and resolve through
   :class:`~core.handoff.events.TicketDesk`.

Ticket systems implement :class:`~core.handoff.ports.TicketSystem` (``adapters/tickets``).
"""
