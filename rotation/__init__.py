"""Rotate Microsoft Entra ID client secrets kept in Azure Key Vault.

The package is the product and knows nothing of Azure Functions or of the local cloud. Its pure core
(``settings``, ``model``, ``policy``, ``aadsts``, ``events``, ``errors``, ``redact``) decides; the
reconciler drives the ``ports`` that the ``adapters`` implement against Key Vault, Microsoft Graph and
the Entra token endpoint. The rotation state lives in the Key Vault secret's tags (see ``model.Tag``).
"""
