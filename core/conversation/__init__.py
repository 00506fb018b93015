"""The conversation layer: what happens around an answer in any chat (ARCHITECTURE §7a).

A chat turn, whatever the platform:

1. the platform adapter turns its event into a :class:`~core.conversation.types.Turn`
   (where it was said, by whom, what) and hands it over with the platform's two ports
   (:class:`~core.conversation.ports.Chat`): a *surface* that posts and renders, and an
   *identity* port that knows people and conversations;
2. :class:`~core.conversation.service.ConversationService` starts a reply (the surface's
   :class:`~core.conversation.ports.Reply`: "working on it" at once), resolves the asker
   (directory by platform id, then the platform's email) and the audience (direct →
   ``dm``, public → ``public``, private → what every member may read), asks the answer flow
   with the reply as its progress sink (status steps, the model's text as it comes: see
   core/answering/progress.py), records the posted answer with its platform-neutral
   :class:`~core.conversation.types.ConversationRef`, and has the reply finish with the
   checked answer in place of whatever was shown;
3. buttons are actions on a recorded answer, decided here once: votes (a person is offered
   after the second 👎 in a thread, once per thread, claimed in the store), "talk to a
   human" (a ticket), and the private answer (only the asker, re-answered for a ``dm``
   audience);
4. :class:`~core.conversation.outbound.Outbound` posts into a recorded conversation from
   outside a turn (an operator's ``say``, an agent's reply).

Each platform claims an incoming event before answering it, through the same leased claims
(:mod:`core.conversation.leases`): one replica answers it, and one that dies mid-answer
hands it over to another once its lease runs out. Writes people depend on (records, votes,
tickets, claims) wait out a database restart (:mod:`core.conversation.durable`).
"""
