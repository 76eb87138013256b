using Keel.Runtime;
using Keel.Storage;

namespace Keel.Tests.Unit;

/// <summary>A worker's standing offer is settled exactly once, whichever report of its hand-off comes first.</summary>
public sealed class HandOffOfferTests
{
    private const long Process = 7;
    private static readonly Slots.Reservation Slot = new(1, 1);

    private static HandOff HandOffOf(long offerId, long process = Process)
        => new(offerId, process, new ClaimedJob(100 + offerId, 200 + offerId, "kind", "default", "{}", 0, 1, 5, 0, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch));

    private static HandOffOffer Standing(long offerId)
    {
        var offer = new HandOffOffer();
        offer.Opening();
        Assert.Null(offer.Opened(offerId, Process, Slot, now: 0));
        return offer;
    }

    [Fact]
    public void The_notification_takes_the_offer_and_a_later_check_finds_nothing_to_take()
    {
        var offer = Standing(1);

        var taken = offer.Notified(HandOffOf(1), Process);

        Assert.Equal((1L, Process, Slot), (taken!.Id, taken.ProcessId, taken.Reservation));
        Assert.Null(offer.Current);
        Assert.Null(offer.Take(1));
    }

    [Fact]
    public void The_check_takes_the_offer_and_a_late_notification_starts_nothing()
    {
        var offer = Standing(1);

        Assert.NotNull(offer.Take(1));

        Assert.Null(offer.Notified(HandOffOf(1), Process));
        Assert.Null(offer.Current);
    }

    [Fact]
    public void A_notification_of_an_older_offer_leaves_the_standing_one_alone()
    {
        var offer = Standing(2);

        Assert.Null(offer.Notified(HandOffOf(1), Process));
        Assert.Null(offer.Take(1));

        Assert.Equal(2, offer.Current!.Id);
    }

    [Fact]
    public void A_notification_that_beats_the_offer_s_reply_is_settled_by_that_reply_and_only_once()
    {
        var offer = new HandOffOffer();
        offer.Opening();

        Assert.Null(offer.Notified(HandOffOf(3), Process));
        var early = offer.Opened(3, Process, Slot, now: 0);

        Assert.Equal((3L, 3L), (early!.Value.Offer.Id, early.Value.HandOff.OfferId));
        Assert.Null(offer.Current); // Taken already: neither a check nor a second notification takes it again.
        Assert.Null(offer.Take(3));
        Assert.Null(offer.Notified(HandOffOf(3), Process));
    }

    [Fact]
    public void An_early_notification_of_another_offer_or_process_is_not_kept()
    {
        var offer = new HandOffOffer();
        offer.Opening();
        offer.Notified(HandOffOf(4, process: Process + 1), Process);
        Assert.Null(offer.Opened(4, Process, Slot, now: 0));
        Assert.Equal(4, offer.Current!.Id);

        var other = new HandOffOffer();
        other.Opening();
        other.Notified(HandOffOf(5), Process);
        Assert.Null(other.Opened(6, Process, Slot, now: 0));
        Assert.Equal(6, other.Current!.Id);
    }

    [Fact]
    public void No_offer_opened_leaves_nothing_standing_and_a_notification_after_it_is_not_kept()
    {
        var offer = new HandOffOffer();
        offer.Opening();
        Assert.Null(offer.Opened(null, Process, Slot, now: 0));

        Assert.Null(offer.Notified(HandOffOf(1), Process));
        Assert.Null(offer.Opened(1, Process, Slot, now: 0));
        Assert.Equal(1, offer.Current!.Id);
    }

    [Fact]
    public void A_check_that_finds_the_offer_open_moves_its_next_check_unless_it_was_taken_meanwhile()
    {
        var offer = Standing(1);
        var read = offer.Current!;

        Assert.True(offer.StillOpen(read, now: 50));
        Assert.Equal(50, offer.Current!.CheckedAt);

        var reread = offer.Current!;
        Assert.NotNull(offer.Notified(HandOffOf(1), Process));
        Assert.False(offer.StillOpen(reread, now: 100));
        Assert.Null(offer.Current);
    }
}
