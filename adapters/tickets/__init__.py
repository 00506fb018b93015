"""Ticket systems behind the core's handoff port (`core/handoff/ports.py: TicketSystem`), one
module each: the built-in queue, Jira Cloud / Jira Service Management, Zendesk,
ServiceNow and a signed webhook. Each also knows how its system reports agents' work back
(`verify` a loop-back request, `parse` it into AgentEvents); `hooks.py` serves
`POST /hooks/tickets/{provider}`."""
