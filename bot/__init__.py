"""yizhan: finds the trade-union service stations for outdoor workers that are open now."""
