"""HTTP only: the Identity v3 routers, the event stream's routes and the proxy. They read
the request, call ``domain/`` and shape the answer in the API's own words; no SQL here."""
