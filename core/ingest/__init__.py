"""Document ingestion: turning source files into parsed sections and retrieval-sized chunks."""
