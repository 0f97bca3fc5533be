"""The platform's Gitea: the narrow API seam (:mod:`.api`) and the repository mirror (:mod:`.mirror`)."""
