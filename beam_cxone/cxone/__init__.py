"""NICE CXone access: credentials, discovery, cached tokens, API client, start-up validation.

Entry points: `options.CxoneOptions`, `validation.validate_or_raise`; the `validate` command is `beam_cxone.commands.validate`.
Nothing is imported here so that importing the package stays cheap.
"""
