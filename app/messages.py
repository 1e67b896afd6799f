"""The one table of user-facing messages for domain error codes (a French table can follow).

Services raise `DomainError(code)`; views look the code up here. Forms keep their own
field messages in forms.py and templates keep their own text.
"""
from __future__ import annotations

MESSAGES: dict[str, str] = {
    # generic
    "not_found": "We could not find that page.",
    "forbidden": "You do not have access to this page.",
    "rate_limited": "Too many attempts. Please wait a minute and try again.",
    # accounts (issue 3): registration, login, verification, password reset, profile
    "password_too_short": "Use at least 12 characters.",
    "password_too_long": "This password is longer than 72 bytes, the most bcrypt can check. Please choose "
                         "a shorter one (accented letters and emoji count as several bytes).",
    "password_is_personal": "Your password must not contain your username, your email address or your name.",
    "password_too_common": "This password is on the list of commonly used passwords. Please choose another one.",
    "password_too_weak": "This password would be easy to guess. Try a few unrelated words, or add more "
                         "characters.",
    "email_taken": "An account already uses this email address. Log in, or reset your password if you "
                   "forgot it.",
    "username_taken": "This username is already taken. Please choose another one.",
    "login_failed": "The email or password is wrong.",
    "account_disabled": "This account has been disabled. Please contact us if you think this is a mistake.",
    "verification_link_invalid": "This verification link is not valid. Log in and ask for a new one.",
    "verification_link_expired": "This verification link has expired. Log in and ask for a new one.",
    "current_password_wrong": "Your current password is wrong.",
    "current_password_needed": "Enter your current password to change your email address.",
    "session_not_found": "That session does not exist or is not yours.",
    "reset_link_invalid": "This password reset link is not valid. Please ask for a new one.",
    "reset_expired": "This password reset link has expired (links last 20 minutes). Please ask for a new one.",
    "reset_used": "This password reset link has already been used. Please ask for a new one if you need to.",
    "reset_voided": "Too many wrong codes: this password reset no longer works. Please ask for a new one.",
    "reset_superseded": "A newer password reset was asked for: please use the link and code from the most "
                        "recent email.",
    "reset_code_wrong": "This code is wrong. {remaining} attempt(s) left before the reset is cancelled.",
    "second_factor_wrong": "This authentication code or recovery code is wrong. {remaining} attempt(s) left "
                           "before the reset is cancelled.",
    "second_factor_unavailable": "Two-factor authentication cannot be checked right now. Please try again later.",
    # tickets and check-in (issue 7): what staff read under each scan verdict
    "scan_VALID": "Let them in.",
    "scan_ALREADY_USED": "This ticket was already checked in. Do not admit a second time.",
    "scan_VOID": "This ticket was cancelled. Do not admit.",
    "scan_KEY_MISMATCH": "This code was replaced: the holder's tickets were re-issued. "
                         "Ask for the new ticket (the holder can download it again).",
    "scan_UNKNOWN_TICKET": "This code was signed by Guichet but the ticket does not exist. Do not admit.",
    "scan_FORGED": "The signature does not match: this code is forged or damaged. Do not admit.",
    "scan_MALFORMED": "This is not a Guichet ticket code. Scan again or type it carefully.",
    "scanner_token_staff_only": "Only staff members and administrators can create scanner tokens.",
    "scanner_token_name_required": "Give the device a name, for example “Gate 3 phone”.",
    "scanner_token_limit": "You already have {limit} active scanner tokens. Revoke one you no longer use first.",
    "scanner_token_created": "Token created. Copy it into the scanner app now: it will not be shown again.",
    "scanner_token_revoked": "Token revoked: the device using it can no longer check tickets in.",
    "api_login_required": "Log in as staff, or send a scanner token as “Authorization: Bearer …”.",
    "api_staff_only": "Only staff members and administrators can check tickets in.",
    "api_payload_required": "Send a JSON object with the scanned text, e.g. {{\"payload\": \"AE…\"}}.",
    "user_key_rotated": "The user key of {name} was rotated: {count} ticket(s) re-issued and the old QR "
                        "codes no longer work. {name} has been emailed the new tickets.",
    # shop: catalogue, cart, checkout, payment, orders (issue 6)
    "offer_unavailable": "“{name}” is no longer on sale.",
    "event_started": "Sales for {event} are closed: the session has started.",
    "sold_out": "Sorry, {event} is sold out: there are not enough seats left for your order.",
    "quantity_invalid": "Choose a quantity between 1 and 10.",
    "cart_empty": "Your cart is empty.",
    "cart_full": "Your cart can hold at most {max} different offers. Check out or remove one first.",
    "cart_has_problems": "Some lines of your cart can no longer be bought as they are. "
                         "Change or remove them to continue.",
    "price_changed": "Prices or availability changed since you reviewed your order. "
                     "Please check the new total and confirm again.",
    "ticket_limit_reached": "You can buy at most {limit} tickets per event. You already hold {held} "
                            "for {event}, so you can add {left} more.",
    "email_not_verified": "Please verify your email address before you check out.",
    "order_expired": "The seats of this order were held for a limited time, which has run out. "
                     "Nothing was charged; please order again.",
    "order_not_payable": "This order can no longer be paid.",
    "order_already_paid": "This order is already paid.",
    "order_expired_refunded": "The seat reservation expired while your payment was processed, so "
                              "the payment was refunded at once. Please order again.",
    "card_number_invalid": "This card number is not valid. Please check the digits.",
    "card_expired": "This card has expired.",
    "card_expiry_invalid": "Enter the card's expiry month (1–12) and year.",
    "card_cvv_invalid": "Enter the 3-digit security code printed on the back of the card.",
    "card_holder_missing": "Enter the name printed on the card.",
    "card_holder_invalid": "The card holder's name is too long or contains characters we cannot accept.",
    "card_declined": "Your bank declined the payment. Nothing was charged; try another card.",
    "insufficient_funds": "The payment was declined for insufficient funds. Nothing was charged; "
                          "try another card.",
    "provider_unavailable": "We could not reach the payment service. Nothing was charged; "
                            "please try again in a moment.",
    "idempotency_key_reused": "A payment for this order is already being processed. "
                              "Please reload the order in a moment.",
    "payment_failed": "The payment did not go through. Nothing was charged; please try again.",
    "order_not_cancellable": "Only a paid order can be cancelled.",
    "order_event_started": "This order can no longer be cancelled: the event has started.",
    "order_ticket_used": "A ticket of this order has already been used at the gate, "
                         "so the order can no longer be cancelled.",
    "refund_failed": "The refund could not be made, so the order was not cancelled. "
                     "Please try again later.",
    # invitations and people (issue 5)
    "invitation_unknown": "We do not recognise this invitation code. Check it (it looks like "
                          "GCH-XXXXXX-XXXXX) or ask the person who invited you.",
    "invitation_expired": "This invitation code has expired. Ask an administrator for a new one.",
    "invitation_used": "This invitation code has already been used. If it was you, log in with your "
                       "email and password.",
    "invitation_revoked": "This invitation code has been cancelled. Ask an administrator for a new one.",
    "invitation_email_mismatch": "This is not the email address your invitation was made for. "
                                 "Use the address the administrator has on record.",
    "invitation_wrong_password": "An account already exists with this email. Enter that account's "
                                 "current password to link it to your invitation.",
    "invitation_account_disabled": "This account is disabled. Please contact an administrator.",
    "invitation_account_linked": "This account is already linked to another staff record.",
    "invitation_not_pending": "Only a pending invitation can be revoked.",
    "person_already_active": "This person already has an account: no invitation code is needed.",
    "person_phone_invalid": "Enter a valid phone number, for example +33 6 12 34 56 78 or 06 12 34 56 78.",
    "person_email_taken": "Another person in the directory already has this email.",
    "person_role_invalid": "Choose staff or admin.",
    # users administration (issue 5)
    "role_invalid": "Choose customer, staff or admin.",
    "role_unchanged": "This user already has that role.",
    "last_admin": "This is the last active administrator. Make someone else an admin first.",
    "cannot_disable_self": "You cannot disable your own account.",
    "user_already_disabled": "This account is already disabled.",
    "user_not_disabled": "This account is not disabled.",
    "no_sessions_to_revoke": "This user has no active session to revoke.",
    # two-factor authentication
    "2fa_code_invalid": "That code is not valid. Enter the current 6-digit code from your app, "
                        "or one of your recovery codes.",
    "2fa_password_or_code_wrong": "Your password or your code is not right. Please try again.",
    "2fa_already_enabled": "Two-factor authentication is already on for your account.",
    "2fa_not_enabled": "Two-factor authentication is not on for this account.",
    "2fa_reset_identity_required": "Say how you checked this person's identity (at least 10 characters).",
    "2fa_login_expired": "Your sign-in took more than 5 minutes. Please log in again.",
    "2fa_setup_expired": "The setup took too long, so we made a new key. Please scan the new QR code.",
    "2fa_required_for_staff": "Staff and admin accounts must turn on two-factor authentication "
                              "before using staff pages. Please set it up now.",
    # administration: catalogue, orders, dashboard, exports (issue 8)
    "event_title_missing": "Enter the event's title.",
    "event_sport_missing": "Enter the sport.",
    "event_venue_missing": "Enter the venue.",
    "event_start_in_past": "The start time must be in the future.",
    "event_capacity_invalid": "The capacity must be a whole number of seats between 1 and {maximum}.",
    "event_capacity_below_taken": "The capacity cannot be lower than the {taken} seat(s) already sold "
                                  "or held by pending orders.",
    "event_slug_invalid": "Use only lowercase letters, digits and single hyphens in the web address "
                          "(e.g. athletics-100m-final).",
    "event_slug_taken": "Another event already uses this web address. Choose another one.",
    "event_needs_published_offer": "Publish at least one offer of this event before publishing the event.",
    "event_has_sales": "This event has orders: it cannot be deleted. Unpublish it instead.",
    "offer_kind_invalid": "Choose solo, duo, family or a custom kind.",
    "offer_name_missing": "Give the custom offer a name, for example “Group of 6”.",
    "offer_persons_invalid": "A custom offer admits between 1 and {maximum} persons.",
    "offer_price_not_positive": "The price must be more than €0.00.",
    "offer_price_too_high": "The price can be at most €{maximum:,}.",
    "offer_kind_locked": "This offer has been sold: the number of persons it admits can no longer change. "
                         "Unpublish it and create a new offer instead.",
    "offer_name_taken": "This event already has an offer with that name.",
    "offer_has_sales": "This offer has been sold: it cannot be deleted, only unpublished.",
    "date_range_invalid": "The end date must be on or after the start date.",
    # messages refactor: what the views used to write inline (flash messages and the like)
    # -- sign-in, registration, email verification, password reset
    "login_to_continue": "Please log in to continue.",
    "login_first": "Please log in first.",
    "login_required_json": "Please log in.",
    "logged_out": "You are logged out. See you soon!",
    "registered_email_sent": "Welcome, {first_name}! Your account is ready: you can log in now. "
                             "We sent a link to {email} to confirm your address.",
    "registered_email_not_sent": "Welcome, {first_name}! Your account is ready: you can log in now. "
                                 "We could not send the confirmation email; ask for a new one from My account.",
    "email_confirmed": "Thank you: your email address is confirmed.",
    "email_already_confirmed": "Your email address is already confirmed.",
    "verification_resent": "We sent a new confirmation link to {email}.",
    "verification_not_sent": "We could not send the email right now. Please try again in a few minutes.",
    "second_factor_missing": "Enter the code from your authenticator app, or a recovery code.",
    "password_reset_done": "Your password has been changed and every session was logged out. "
                           "Log in with your new password.",
    # -- my account: profile, password, sessions, two-factor authentication
    "profile_saved": "Profile saved.",
    "profile_saved_confirm_email": "Profile saved. We sent a link to {email}: please confirm your new address.",
    "password_changed": "Your password has been changed.",
    "password_changed_sessions_revoked": "Your password has been changed. {count} other session(s) were "
                                         "logged out.",
    "session_revoked": "That session has been logged out.",
    "other_sessions_revoked": "{count} other session(s) logged out.",
    "no_other_sessions": "You have no other session.",
    "2fa_recovery_code_used": "You used a recovery code; {left} left. If you lost your phone, set up "
                              "two-factor authentication again from My account.",
    "2fa_enabled": "Two-factor authentication is now on. Save your recovery codes below.",
    "2fa_recovery_codes_unavailable": "Recovery codes can only be downloaded right after they are made. "
                                      "Make new ones if you lost them.",
    "2fa_recovery_codes_renewed": "New recovery codes are ready; the old ones no longer work.",
    "2fa_disabled": "Two-factor authentication is now off.",
    # -- shop: cart, orders, payment
    "offer_gone": "“This offer” is no longer on sale.",
    "cart_added": "Added {quantity} × {name} for {title} to your cart.",
    "cart_quantity_capped": "You can have at most {max} of one offer: your cart now holds {max} × "
                            "{name} for {title}.",
    "cart_updated": "Your cart was updated.",
    "cart_line_removed": "The line was removed from your cart.",
    "order_placed": "Order {order} is placed and your seats are held for {minutes} minutes. "
                    "Pay now to get your tickets.",
    "payment_form_expired": "This form has expired. Please enter your card again.",
    "checkout_expired": "This review page has expired. Please check your order and pay again.",
    "checkout_not_paid": "Order {order} is placed and your seats are held, but it is not paid yet. {reason}",
    "payment_accepted": "Payment accepted: your order is paid and your tickets are ready.",
    "payment_accepted_email_sent": "Payment accepted: your order is paid and your tickets are ready. "
                                   "A confirmation email is on its way.",
    "payment_accepted_email_queued": "Payment accepted: your order is paid and your tickets are ready under "
                                     "“See my tickets”. Your confirmation email with the PDF tickets will "
                                     "follow in a few minutes.",
    "order_cancelled_email_sent": "Order {order} is cancelled: its tickets are void and {amount} is refunded to "
                                  "your card. A confirmation email is on its way.",
    "order_cancelled_email_queued": "Order {order} is cancelled: its tickets are void and {amount} is refunded to "
                                    "your card. A confirmation email will follow in a few minutes.",
    # -- staff invitations
    "invitation_account_created": "Your account is ready: welcome to the Guichet team, {first_name}. "
                                  "You are signed in as {role}.",
    "invitation_account_now_linked": "Your account is now linked: welcome to the Guichet team, {first_name}. "
                                     "You are signed in as {role}.",
    # -- administration: people, invitations, users, two-factor reset, catalogue, orders, exports
    "person_added": "{name} was added to the directory.",
    "person_saved": "{name}'s record was saved.",
    "person_removed": "{name} was removed from the directory.",
    "invitation_email_failed": "We could not email the code. Please give it to the person yourself.",
    "invitation_revoked_done": "The invitation for {name} was revoked; its code no longer works.",
    "user_role_changed": "{email} is now {role}, from their next request.",
    "user_disabled": "{email} is disabled and signed out everywhere.",
    "user_enabled": "{email} can log in again.",
    "user_sessions_revoked": "Every session of {email} was revoked.",
    "2fa_reset_done": "Two-factor authentication was reset for {email}. They can log in with their "
                      "password and should set it up again.",
    "event_created": "“{title}” was created as a draft. Add its offers, then publish it.",
    "event_saved": "The event was saved.",
    "event_published": "“{title}” is on sale.",
    "event_unpublished": "“{title}” is hidden from the catalogue.",
    "event_deleted": "“{title}” was deleted.",
    "offer_created": "Offer “{name}” was added as a draft: publish it to put it on sale.",
    "offer_saved": "The offer was saved.",
    "offer_published": "Offer “{name}” is on sale.",
    "offer_unpublished": "Offer “{name}” is no longer on sale.",
    "offer_deleted": "Offer “{name}” was deleted.",
    "admin_order_cancelled_email_sent": "Order {order} was cancelled and {amount} refunded; its tickets no longer "
                                        "work. The customer was told by email.",
    "admin_order_cancelled_email_queued": "Order {order} was cancelled and {amount} refunded; its tickets no longer "
                                          "work. The email telling the customer is queued.",
    "export_filters_invalid": "These filters are not valid; nothing was exported. Check the dates and the event.",
}

ERROR_PAGES: dict[int, tuple[str, str]] = {
    400: ("Bad request", "Your browser sent something we could not understand. Please go back and try again."),
    401: ("Please log in", "You need to log in to see this page."),
    403: ("Access denied", "You do not have access to this page."),
    404: ("Page not found", "We could not find that page. It may have moved, or the link may be wrong."),
    405: ("Not allowed", "This page cannot be used that way."),
    413: ("Too large", "What you sent is too large."),
    429: ("Too many requests", "You have tried that too many times. Please wait a moment and try again."),
    500: ("Something went wrong", "An unexpected error happened on our side. It has been logged; please try again."),
    503: ("Temporarily unavailable", "Guichet is busy or under maintenance. Please try again in a few minutes."),
}


def message_for(code: str, **params) -> str:
    """English text for a domain error code; unknown codes fall back to a generic sentence."""
    template = MESSAGES.get(code)
    if template is None:
        return "Something went wrong. Please try again."
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):
        return template
