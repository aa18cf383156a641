Feature: An operator moderates polls through the admin
  The polls admin (Django admin behind the gateway) finds polls and acts on them through the
  same services the API uses, so the rest of the platform hears of it.

  Background:
    Given an open poll with 2 choices
    And the operator has logged in to the polls admin

  Scenario: Close a poll from the admin
    When the operator finds the poll in the admin by its question
    And the operator applies the admin action "close_polls" to it
    Then the admin reports "Closed 1 poll(s)."
    And the poll is closed for API clients
    And a new vote in the poll is refused as "poll-not-open"

  Scenario: Delete a poll from the admin
    When the operator finds the poll in the admin by its question
    And the operator applies the admin action "delete_polls" to it
    Then the admin reports "Deleted 1 poll(s)."
    And the poll is gone for API clients
    And a new vote in the poll is refused as "poll-not-found"
    And the admin no longer finds the poll
