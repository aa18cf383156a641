Feature: A v1 client finds its way to the current API
  v1 is deprecated: each of its responses says since when (Deprecation), until when it is served
  (Sunset) and where to go (Link). A client can follow those links to the same resource in v3.

  Scenario: From a poll in v1 to the same poll in v3 by the deprecation links
    Given an open poll with 2 choices
    When a v1 client reads the poll
    Then the answer says v1 is deprecated and is served until a later sunset
    When the client follows the "successor-version" link of the v1 answer
    Then it reads the same poll in v2, which is not deprecated
    When the client follows the "deprecation" link of the v1 answer
    Then the documentation names v3 as the newest polls API
    When the client reads the poll at the path the v3 schema documents
    Then it reads the same poll as HAL, linked to itself at that path
