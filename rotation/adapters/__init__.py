"""Adapters: the ports implemented over msgraph-sdk, azure-keyvault-secrets (aio), azure-identity and
Azure Storage (blob lease, queue), with one tenacity retry layer. Only the wiring
(`rotation.runtime`) and the adapters themselves import these modules.
"""
