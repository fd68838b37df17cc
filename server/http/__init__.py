"""What the hosted pages and the merchant API share: the services holder, the client's address, and
the problem document (the API's one error shape). Neither `web/` nor `api/` is imported from here."""
